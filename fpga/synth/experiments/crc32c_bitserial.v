// crc32c_bitserial: a synthesis experiment, not part of the design. The CRC-32C of fpga/rtl/crc32c.v
// written the obvious way, as a loop over the 64 bits of a beat (unrolled by synthesis into a
// chain 64 steps deep), with the input registered and nothing else pipelined. fpga/synth/run.sh
// places and routes it beside crc32c so that REPORT.md can state what the generated XOR
// networks buy. Same interface as crc32c.
`resetall
`default_nettype none

module crc32c_bitserial (
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

localparam [31:0] POLYNOMIAL = 32'h82F63B78;

reg        out_valid_reg = 1'b0;
reg [31:0] out_data_reg = 32'd0;
wire advance = !out_valid_reg || m_axis_tready;
assign s_axis_tready = advance;

reg        r0_valid_reg = 1'b0;
reg [63:0] r0_data_reg = 64'd0;
reg [7:0]  r0_keep_reg = 8'd0;
reg        r0_last_reg = 1'b0;
reg [31:0] state_reg = 32'hFFFFFFFF;

reg [31:0] next_state;
integer bit_index;
always @* begin
    next_state = state_reg;
    for (bit_index = 0; bit_index < 64; bit_index = bit_index + 1) begin
        if (r0_keep_reg[bit_index / 8]) begin
            if (next_state[0] ^ r0_data_reg[bit_index]) begin
                next_state = (next_state >> 1) ^ POLYNOMIAL;
            end else begin
                next_state = next_state >> 1;
            end
        end
    end
end

always @(posedge clk) begin
    if (advance) begin
        r0_valid_reg <= s_axis_tvalid;
        r0_data_reg <= s_axis_tdata;
        r0_keep_reg <= s_axis_tkeep;
        r0_last_reg <= s_axis_tlast;
        out_valid_reg <= r0_valid_reg && r0_last_reg;
        out_data_reg <= ~next_state;
        if (r0_valid_reg) begin
            state_reg <= r0_last_reg ? 32'hFFFFFFFF : next_state;
        end
    end
    if (rst) begin
        r0_valid_reg <= 1'b0;
        out_valid_reg <= 1'b0;
        state_reg <= 32'hFFFFFFFF;
    end
end

assign m_axis_tdata = out_data_reg;
assign m_axis_tvalid = out_valid_reg;
assign m_axis_tlast = 1'b1;

endmodule

`resetall
