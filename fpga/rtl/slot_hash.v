// slot_hash: Redis Cluster key slot of every key on an AXI-Stream, 8 bytes a clock.
//
// Function:   for each packet (one key) on s_axis, one beat on m_axis whose tdata is the key's
//             slot: CRC16-XMODEM of the key, or of the bytes inside its first {...} when those
//             are not empty, modulo 16384; bit for bit ember_store::slot::key_slot, the
//             function Ember's router uses.
// Interface:  s_axis: 64-bit tdata, byte 0 of the key in tdata[7:0]; tkeep is all ones on
//             every beat but the last and 2^n-1 (n = 0..8) on the last; a single beat with
//             tkeep = 0 is the empty key. m_axis: tdata[13:0] the slot (tdata[15:14] = 0),
//             tlast = 1.
// Throughput: one beat (8 bytes) a clock, back-to-back keys included.
// Latency:    4 clocks from the handshake of a key's last beat to its m_axis_tvalid.
// Structure:  two CRCs run side by side, one over the whole key and one over the hash tag. A
//             tag can begin and end anywhere in a beat: its first beat is processed from state
//             0, where leading zero bytes change nothing, and the bytes after its closing brace
//             are zeros that the unshift network takes back out, like a last beat's missing
//             bytes. The XOR networks are generated from the Rust reference (crc16_*.v).
// Back-pressure: the pipeline advances when m_axis can take a result:
//             s_axis_tready = !m_axis_tvalid || m_axis_tready.
`resetall
`default_nettype none

module slot_hash (
    input  wire        clk,
    input  wire        rst,

    input  wire [63:0] s_axis_tdata,
    input  wire [7:0]  s_axis_tkeep,
    input  wire        s_axis_tvalid,
    output wire        s_axis_tready,
    input  wire        s_axis_tlast,

    output wire [15:0] m_axis_tdata,
    output wire        m_axis_tvalid,
    input  wire        m_axis_tready,
    output wire        m_axis_tlast
);

localparam [7:0] OPEN_BRACE = 8'h7B;
localparam [7:0] CLOSE_BRACE = 8'h7D;
localparam [3:0] NONE = 4'd8;  // "no such byte in this beat"

// Hash-tag phases of the key being read.
localparam [1:0] PHASE_SEEK_OPEN = 2'd0;  // no '{' yet
localparam [1:0] PHASE_IN_TAG = 2'd1;     // after the first '{', no '}' yet
localparam [1:0] PHASE_DONE = 2'd2;       // the first {...} is complete

reg out_valid_reg = 1'b0;
wire advance = !out_valid_reg || m_axis_tready;
assign s_axis_tready = advance;

// Stage 0: input register.
reg        r0_valid_reg = 1'b0;
reg [63:0] r0_data_reg = 64'd0;
reg [7:0]  r0_keep_reg = 8'd0;
reg        r0_last_reg = 1'b0;

// Tag tracking, updated in stage 1.
reg [1:0]  phase_reg = PHASE_SEEK_OPEN;
reg        tag_nonempty_reg = 1'b0;
reg [3:0]  tag_zero_bytes_reg = 4'd0;

// Stage 1: whole-key and tag bytes, each zeroed outside its range.
reg        r1_valid_reg = 1'b0;
reg [63:0] r1_whole_data_reg = 64'd0;
reg [63:0] r1_tag_data_reg = 64'd0;
reg        r1_tag_update_reg = 1'b0;
reg [3:0]  r1_whole_zero_bytes_reg = 4'd0;
reg [3:0]  r1_tag_zero_bytes_reg = 4'd0;
reg        r1_use_tag_reg = 1'b0;
reg        r1_last_reg = 1'b0;

// Stage 2: data terms.
reg        r2_valid_reg = 1'b0;
reg [15:0] r2_whole_term_reg = 16'd0;
reg [15:0] r2_tag_term_reg = 16'd0;
reg        r2_tag_update_reg = 1'b0;
reg [3:0]  r2_whole_zero_bytes_reg = 4'd0;
reg [3:0]  r2_tag_zero_bytes_reg = 4'd0;
reg        r2_use_tag_reg = 1'b0;
reg        r2_last_reg = 1'b0;

// Stage 3: running states, and the chosen state of a finished key.
reg [15:0] whole_state_reg = 16'd0;
reg [15:0] tag_state_reg = 16'd0;
reg        r3_valid_reg = 1'b0;
reg [15:0] r3_state_reg = 16'd0;
reg [3:0]  r3_zero_bytes_reg = 4'd0;

// Stage 4: output register.
reg [13:0] out_slot_reg = 14'd0;

function [3:0] first_set;
    input [7:0] bits;
    integer index;
    begin
        first_set = NONE;
        for (index = 7; index >= 0; index = index - 1) begin
            if (bits[index]) first_set = index[3:0];
        end
    end
endfunction

function [3:0] byte_count;
    input [7:0] keep;
    begin
        case (keep)
            8'h00: byte_count = 4'd0;
            8'h01: byte_count = 4'd1;
            8'h03: byte_count = 4'd2;
            8'h07: byte_count = 4'd3;
            8'h0F: byte_count = 4'd4;
            8'h1F: byte_count = 4'd5;
            8'h3F: byte_count = 4'd6;
            8'h7F: byte_count = 4'd7;
            default: byte_count = 4'd8;
        endcase
    end
endfunction

// Stage 1 logic: where the tag is in this beat.
wire [7:0] is_open;
wire [7:0] is_close;
wire [7:0] tag_lanes;
wire [63:0] keep_mask;
wire [63:0] tag_mask;
wire [3:0] count = byte_count(r0_keep_reg);
wire [3:0] open_position = first_set(is_open);
wire seeking = phase_reg == PHASE_SEEK_OPEN;
wire opens = seeking && open_position != NONE;
wire tag_active = opens || phase_reg == PHASE_IN_TAG;
// When the tag opens in this beat, only a '}' after the '{' can close it.
wire [7:0] after_open = opens ? (8'hFE << open_position) : 8'hFF;
wire [3:0] close_position = first_set(is_close & after_open);
wire closes = tag_active && close_position != NONE;
wire [3:0] tag_start = opens ? open_position + 4'd1 : 4'd0;
wire [3:0] tag_end = closes ? close_position : count;
wire tag_bytes_here = tag_active && tag_end > tag_start;
wire [1:0] next_phase = closes ? PHASE_DONE : (tag_active ? PHASE_IN_TAG : phase_reg);
wire next_tag_nonempty = tag_nonempty_reg || tag_bytes_here;
wire [3:0] next_tag_zero_bytes = closes ? 4'd8 - close_position : tag_zero_bytes_reg;

genvar lane;
generate
    for (lane = 0; lane < 8; lane = lane + 1) begin : g_lanes
        assign is_open[lane] = r0_keep_reg[lane] && r0_data_reg[8*lane +: 8] == OPEN_BRACE;
        assign is_close[lane] = r0_keep_reg[lane] && r0_data_reg[8*lane +: 8] == CLOSE_BRACE;
        assign tag_lanes[lane] = tag_active && lane >= tag_start && lane < tag_end;
        assign keep_mask[8*lane +: 8] = {8{r0_keep_reg[lane]}};
        assign tag_mask[8*lane +: 8] = {8{tag_lanes[lane]}};
    end
endgenerate

wire [15:0] whole_term;
wire [15:0] tag_term;
crc16_data_term whole_term_inst (.data(r1_whole_data_reg), .term(whole_term));
crc16_data_term tag_term_inst (.data(r1_tag_data_reg), .term(tag_term));

wire [15:0] whole_shifted;
wire [15:0] tag_shifted;
crc16_shift8 whole_shift_inst (.state(whole_state_reg), .shifted(whole_shifted));
crc16_shift8 tag_shift_inst (.state(tag_state_reg), .shifted(tag_shifted));
wire [15:0] whole_next = whole_shifted ^ r2_whole_term_reg;
wire [15:0] tag_next = r2_tag_update_reg ? tag_shifted ^ r2_tag_term_reg : tag_state_reg;

// The slot keeps the low 14 bits of the CRC.
/* verilator lint_off UNUSEDSIGNAL */
wire [15:0] unshifted;
/* verilator lint_on UNUSEDSIGNAL */
crc16_unshift unshift_inst (.state(r3_state_reg), .zero_bytes(r3_zero_bytes_reg), .unshifted(unshifted));

always @(posedge clk) begin
    if (advance) begin
        r0_valid_reg <= s_axis_tvalid;
        r0_data_reg <= s_axis_tdata;
        r0_keep_reg <= s_axis_tkeep;
        r0_last_reg <= s_axis_tlast;

        r1_valid_reg <= r0_valid_reg;
        if (r0_valid_reg) begin
            r1_whole_data_reg <= r0_data_reg & keep_mask;
            r1_tag_data_reg <= r0_data_reg & tag_mask;
            r1_tag_update_reg <= phase_reg != PHASE_DONE;
            r1_whole_zero_bytes_reg <= 4'd8 - count;
            r1_tag_zero_bytes_reg <= next_tag_zero_bytes;
            r1_use_tag_reg <= next_phase == PHASE_DONE && next_tag_nonempty;
            r1_last_reg <= r0_last_reg;
            if (r0_last_reg) begin
                phase_reg <= PHASE_SEEK_OPEN;
                tag_nonempty_reg <= 1'b0;
                tag_zero_bytes_reg <= 4'd0;
            end else begin
                phase_reg <= next_phase;
                tag_nonempty_reg <= next_tag_nonempty;
                tag_zero_bytes_reg <= next_tag_zero_bytes;
            end
        end

        r2_valid_reg <= r1_valid_reg;
        r2_whole_term_reg <= whole_term;
        r2_tag_term_reg <= tag_term;
        r2_tag_update_reg <= r1_tag_update_reg;
        r2_whole_zero_bytes_reg <= r1_whole_zero_bytes_reg;
        r2_tag_zero_bytes_reg <= r1_tag_zero_bytes_reg;
        r2_use_tag_reg <= r1_use_tag_reg;
        r2_last_reg <= r1_last_reg;

        r3_valid_reg <= r2_valid_reg && r2_last_reg;
        if (r2_valid_reg) begin
            whole_state_reg <= r2_last_reg ? 16'd0 : whole_next;
            tag_state_reg <= r2_last_reg ? 16'd0 : tag_next;
            r3_state_reg <= r2_use_tag_reg ? tag_next : whole_next;
            r3_zero_bytes_reg <= r2_use_tag_reg ? r2_tag_zero_bytes_reg : r2_whole_zero_bytes_reg;
        end

        out_valid_reg <= r3_valid_reg;
        out_slot_reg <= unshifted[13:0];
    end

    if (rst) begin
        r0_valid_reg <= 1'b0;
        r1_valid_reg <= 1'b0;
        r2_valid_reg <= 1'b0;
        r3_valid_reg <= 1'b0;
        out_valid_reg <= 1'b0;
        phase_reg <= PHASE_SEEK_OPEN;
        tag_nonempty_reg <= 1'b0;
        tag_zero_bytes_reg <= 4'd0;
        whole_state_reg <= 16'd0;
        tag_state_reg <= 16'd0;
    end
end

assign m_axis_tdata = {2'b00, out_slot_reg};
assign m_axis_tvalid = out_valid_reg;
assign m_axis_tlast = 1'b1;

endmodule

`resetall
