// crc32c: CRC-32C (Castagnoli) of every packet of an AXI-Stream, 8 bytes a clock.
//
// Function:   for each packet on s_axis, one beat on m_axis whose tdata is the CRC-32C of the
//             packet's bytes (reflected polynomial 0x82F63B78, initial and final XOR
//             0xFFFFFFFF), bit for bit ember_rdma::checksum::crc32c: the checksum of an item in
//             the one-sided read region, so a NIC can verify a read before the host sees it.
// Interface:  s_axis: 64-bit tdata, byte 0 of the packet in tdata[7:0]; tkeep is all ones on
//             every beat but the last and 2^n-1 (n = 0..8) on the last; a single beat with
//             tkeep = 0 is the empty message. m_axis: tdata[31:0] the CRC, tlast = 1.
// Throughput: one beat (8 bytes) a clock, back-to-back packets included.
// Latency:    5 clocks from the handshake of a packet's last beat to its m_axis_tvalid.
// Structure:  every beat, the last one too, is processed as 8 bytes (missing bytes as zeros at
//             the end) by a fixed XOR network, so the state loop has no multiplexer in it; the
//             last beat's zeros are then taken back out by the generated unshift network. The
//             XOR networks are generated from the Rust reference (crc32c_*.v).
// Back-pressure: the pipeline advances when m_axis can take a result:
//             s_axis_tready = !m_axis_tvalid || m_axis_tready.
`resetall
`default_nettype none

module crc32c (
    input  wire        clk,
    input  wire        rst,

    input  wire [63:0] s_axis_tdata,
    input  wire [7:0]  s_axis_tkeep,
    input  wire        s_axis_tvalid,
    output wire        s_axis_tready,
    input  wire        s_axis_tlast,

    output wire [31:0] m_axis_tdata,
    output wire        m_axis_tvalid,
    input  wire        m_axis_tready,
    output wire        m_axis_tlast
);

localparam [31:0] INITIAL_STATE = 32'hFFFFFFFF;

// The whole pipeline moves together; it stops only while a result waits on m_axis.
reg out_valid_reg = 1'b0;
wire advance = !out_valid_reg || m_axis_tready;
assign s_axis_tready = advance;

// Stage 0: input register.
reg        r0_valid_reg = 1'b0;
reg [63:0] r0_data_reg = 64'd0;
reg [7:0]  r0_keep_reg = 8'd0;
reg        r0_last_reg = 1'b0;

// Stage 1: bytes outside tkeep zeroed; number of missing bytes at the end of the beat.
reg        r1_valid_reg = 1'b0;
reg [63:0] r1_data_reg = 64'd0;
reg [3:0]  r1_zero_bytes_reg = 4'd0;
reg        r1_last_reg = 1'b0;

// Stage 2: the beat's data term.
reg        r2_valid_reg = 1'b0;
reg [31:0] r2_term_reg = 32'd0;
reg [3:0]  r2_zero_bytes_reg = 4'd0;
reg        r2_last_reg = 1'b0;

// Stage 3: the running state, and the state of a finished packet.
reg [31:0] state_reg = INITIAL_STATE;
reg        r3_valid_reg = 1'b0;
reg [31:0] r3_state_reg = 32'd0;
reg [3:0]  r3_zero_bytes_reg = 4'd0;

// Stage 4 and the output stage: the two registers of the unshift pipeline.
reg        r4_valid_reg = 1'b0;

function [3:0] missing_bytes;
    input [7:0] keep;
    begin
        case (keep)
            8'h00: missing_bytes = 4'd8;
            8'h01: missing_bytes = 4'd7;
            8'h03: missing_bytes = 4'd6;
            8'h07: missing_bytes = 4'd5;
            8'h0F: missing_bytes = 4'd4;
            8'h1F: missing_bytes = 4'd3;
            8'h3F: missing_bytes = 4'd2;
            8'h7F: missing_bytes = 4'd1;
            default: missing_bytes = 4'd0;
        endcase
    end
endfunction

wire [63:0] keep_mask;
genvar lane;
generate
    for (lane = 0; lane < 8; lane = lane + 1) begin : g_keep
        assign keep_mask[8*lane +: 8] = {8{r0_keep_reg[lane]}};
    end
endgenerate

wire [31:0] term;
crc32c_data_term data_term_inst (.data(r1_data_reg), .term(term));

wire [31:0] shifted;
crc32c_shift8 shift8_inst (.state(state_reg), .shifted(shifted));
wire [31:0] next_state = shifted ^ r2_term_reg;

wire [31:0] unshifted;
crc32c_unshift unshift_inst (
    .clk(clk),
    .enable(advance),
    .state(r3_state_reg),
    .zero_bytes(r3_zero_bytes_reg),
    .unshifted(unshifted)
);

always @(posedge clk) begin
    if (advance) begin
        r0_valid_reg <= s_axis_tvalid;
        r0_data_reg <= s_axis_tdata;
        r0_keep_reg <= s_axis_tkeep;
        r0_last_reg <= s_axis_tlast;

        r1_valid_reg <= r0_valid_reg;
        r1_data_reg <= r0_data_reg & keep_mask;
        r1_zero_bytes_reg <= missing_bytes(r0_keep_reg);
        r1_last_reg <= r0_last_reg;

        r2_valid_reg <= r1_valid_reg;
        r2_term_reg <= term;
        r2_zero_bytes_reg <= r1_zero_bytes_reg;
        r2_last_reg <= r1_last_reg;

        r3_valid_reg <= r2_valid_reg && r2_last_reg;
        if (r2_valid_reg) begin
            state_reg <= r2_last_reg ? INITIAL_STATE : next_state;
            r3_state_reg <= next_state;
            r3_zero_bytes_reg <= r2_zero_bytes_reg;
        end

        r4_valid_reg <= r3_valid_reg;
        out_valid_reg <= r4_valid_reg;
    end

    if (rst) begin
        r0_valid_reg <= 1'b0;
        r1_valid_reg <= 1'b0;
        r2_valid_reg <= 1'b0;
        r3_valid_reg <= 1'b0;
        r4_valid_reg <= 1'b0;
        out_valid_reg <= 1'b0;
        state_reg <= INITIAL_STATE;
    end
end

// The final XOR is an inversion, free in the LUTs that read it.
assign m_axis_tdata = ~unshifted;
assign m_axis_tvalid = out_valid_reg;
assign m_axis_tlast = 1'b1;

endmodule

`resetall
