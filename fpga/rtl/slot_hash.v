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
// Latency:    8 clocks from the handshake of a key's last beat to its m_axis_tvalid.
// Structure:  two CRCs run side by side, one over the whole key and one over the hash tag. A
//             tag can begin and end anywhere in a beat: its first beat is processed from state
//             0, where leading zero bytes change nothing, and the bytes after its closing brace
//             are zeros that the unshift network takes back out, like a last beat's missing
//             bytes. The XOR networks are generated from the Rust reference (crc16_*.v).
//             Finding the tag is split over three stages of lane masks (prefix ORs, no
//             position arithmetic), so that the only loop, the tag phase, is a few muxes.
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

// Hash-tag phases of the key being read.
localparam [1:0] PHASE_SEEK_OPEN = 2'd0;  // no '{' yet
localparam [1:0] PHASE_IN_TAG = 2'd1;     // after the first '{', no '}' yet
localparam [1:0] PHASE_DONE = 2'd2;       // the first {...} is complete

reg out_valid_reg = 1'b0;
wire advance = !out_valid_reg || m_axis_tready;
assign s_axis_tready = advance;

// Lane i and every lane above it, from the lowest set bit up.
function [7:0] at_or_after_first;
    input [7:0] bits;
    integer lane;
    begin
        at_or_after_first[0] = bits[0];
        for (lane = 1; lane < 8; lane = lane + 1) begin
            at_or_after_first[lane] = at_or_after_first[lane - 1] | bits[lane];
        end
    end
endfunction

// Lanes set in a mask of the form returned by at_or_after_first: 8 - position of the first.
function [3:0] lanes_from_top;
    input [7:0] mask;
    begin
        case (mask)
            8'h80: lanes_from_top = 4'd1;
            8'hC0: lanes_from_top = 4'd2;
            8'hE0: lanes_from_top = 4'd3;
            8'hF0: lanes_from_top = 4'd4;
            8'hF8: lanes_from_top = 4'd5;
            8'hFC: lanes_from_top = 4'd6;
            8'hFE: lanes_from_top = 4'd7;
            8'hFF: lanes_from_top = 4'd8;
            default: lanes_from_top = 4'd0;
        endcase
    end
endfunction

function [63:0] lane_mask;
    input [7:0] lanes;
    integer lane;
    begin
        for (lane = 0; lane < 8; lane = lane + 1) begin
            lane_mask[8*lane +: 8] = {8{lanes[lane]}};
        end
    end
endfunction

// Stage 0: input register.
reg        r0_valid_reg = 1'b0;
reg [63:0] r0_data_reg = 64'd0;
reg [7:0]  r0_keep_reg = 8'd0;
reg        r0_last_reg = 1'b0;

// Stage 1: which lanes hold braces; the key's bytes with lanes outside tkeep zeroed.
reg        r1_valid_reg = 1'b0;
reg [63:0] r1_data_reg = 64'd0;
reg [7:0]  r1_keep_reg = 8'd0;
reg [7:0]  r1_open_reg = 8'd0;
reg [7:0]  r1_close_reg = 8'd0;
reg        r1_last_reg = 1'b0;

// Stage 2: lanes after the first '{'; lanes at or after the first '}'.
reg        r2_valid_reg = 1'b0;
reg [63:0] r2_data_reg = 64'd0;
reg [7:0]  r2_keep_reg = 8'd0;
reg        r2_has_open_reg = 1'b0;
reg [7:0]  r2_after_open_reg = 8'd0;
reg [7:0]  r2_close_reg = 8'd0;
reg [7:0]  r2_from_close_reg = 8'd0;
reg        r2_last_reg = 1'b0;

// Stage 3: the tag lanes of this beat for each phase it may meet, ready for the phase mux.
reg        r3_valid_reg = 1'b0;
reg [63:0] r3_data_reg = 64'd0;
reg [3:0]  r3_whole_zero_bytes_reg = 4'd0;
reg        r3_has_open_reg = 1'b0;
reg [7:0]  r3_seek_lanes_reg = 8'd0;   // tag lanes if the tag opens in this beat
reg        r3_seek_closes_reg = 1'b0;
reg [3:0]  r3_seek_zero_bytes_reg = 4'd0;
reg [7:0]  r3_in_lanes_reg = 8'd0;     // tag lanes if the beat starts inside the tag
reg        r3_in_closes_reg = 1'b0;
reg [3:0]  r3_in_zero_bytes_reg = 4'd0;
reg        r3_last_reg = 1'b0;

// Tag phase of the key, updated in stage 4.
reg [1:0]  phase_reg = PHASE_SEEK_OPEN;
reg        tag_nonempty_reg = 1'b0;
reg [3:0]  tag_zero_bytes_reg = 4'd0;

// Stage 4: whole-key and tag bytes, each zeroed outside its range.
reg        r4_valid_reg = 1'b0;
reg [63:0] r4_whole_data_reg = 64'd0;
reg [63:0] r4_tag_data_reg = 64'd0;
reg        r4_tag_update_reg = 1'b0;
reg [3:0]  r4_whole_zero_bytes_reg = 4'd0;
reg [3:0]  r4_tag_zero_bytes_reg = 4'd0;
reg        r4_use_tag_reg = 1'b0;
reg        r4_last_reg = 1'b0;

// Stage 5: data terms.
reg        r5_valid_reg = 1'b0;
reg [15:0] r5_whole_term_reg = 16'd0;
reg [15:0] r5_tag_term_reg = 16'd0;
reg        r5_tag_update_reg = 1'b0;
reg [3:0]  r5_whole_zero_bytes_reg = 4'd0;
reg [3:0]  r5_tag_zero_bytes_reg = 4'd0;
reg        r5_use_tag_reg = 1'b0;
reg        r5_last_reg = 1'b0;

// Stage 6: running states, and the chosen state of a finished key.
reg [15:0] whole_state_reg = 16'd0;
reg [15:0] tag_state_reg = 16'd0;
reg        r6_valid_reg = 1'b0;
reg [15:0] r6_state_reg = 16'd0;
reg [3:0]  r6_zero_bytes_reg = 4'd0;

// Stage 7 and the output stage: the two registers of the unshift pipeline.
reg        r7_valid_reg = 1'b0;

// Stage 1 logic.
wire [7:0] open_lanes;
wire [7:0] close_lanes;
genvar lane;
generate
    for (lane = 0; lane < 8; lane = lane + 1) begin : g_lanes
        assign open_lanes[lane] = r0_keep_reg[lane] && r0_data_reg[8*lane +: 8] == OPEN_BRACE;
        assign close_lanes[lane] = r0_keep_reg[lane] && r0_data_reg[8*lane +: 8] == CLOSE_BRACE;
    end
endgenerate

// Stage 2 logic.
wire [7:0] from_open = at_or_after_first(r1_open_reg);

// Stage 3 logic. Seek: the tag is the lanes after the first '{' and before the first '}'
// after it. In: the tag is the lanes before the first '}'.
wire [7:0] seek_close = r2_close_reg & r2_after_open_reg;
wire [7:0] seek_from_close = at_or_after_first(seek_close);

// Stage 4 logic: the tag phase.
wire seek_opens = phase_reg == PHASE_SEEK_OPEN && r3_has_open_reg;
wire in_tag = phase_reg == PHASE_IN_TAG;
wire [7:0] tag_lanes = seek_opens ? r3_seek_lanes_reg : (in_tag ? r3_in_lanes_reg : 8'd0);
wire closes = seek_opens ? r3_seek_closes_reg : (in_tag && r3_in_closes_reg);
wire [1:0] next_phase = closes ? PHASE_DONE : ((seek_opens || in_tag) ? PHASE_IN_TAG : phase_reg);
wire next_tag_nonempty = tag_nonempty_reg || tag_lanes != 8'd0;
wire [3:0] next_tag_zero_bytes = !closes ? tag_zero_bytes_reg
    : (seek_opens ? r3_seek_zero_bytes_reg : r3_in_zero_bytes_reg);

wire [15:0] whole_term;
wire [15:0] tag_term;
crc16_data_term whole_term_inst (.data(r4_whole_data_reg), .term(whole_term));
crc16_data_term tag_term_inst (.data(r4_tag_data_reg), .term(tag_term));

wire [15:0] whole_shifted;
wire [15:0] tag_shifted;
crc16_shift8 whole_shift_inst (.state(whole_state_reg), .shifted(whole_shifted));
crc16_shift8 tag_shift_inst (.state(tag_state_reg), .shifted(tag_shifted));
wire [15:0] whole_next = whole_shifted ^ r5_whole_term_reg;
wire [15:0] tag_next = r5_tag_update_reg ? tag_shifted ^ r5_tag_term_reg : tag_state_reg;

// The slot keeps the low 14 bits of the CRC.
/* verilator lint_off UNUSEDSIGNAL */
wire [15:0] unshifted;
/* verilator lint_on UNUSEDSIGNAL */
crc16_unshift unshift_inst (
    .clk(clk),
    .enable(advance),
    .state(r6_state_reg),
    .zero_bytes(r6_zero_bytes_reg),
    .unshifted(unshifted)
);

always @(posedge clk) begin
    if (advance) begin
        r0_valid_reg <= s_axis_tvalid;
        r0_data_reg <= s_axis_tdata;
        r0_keep_reg <= s_axis_tkeep;
        r0_last_reg <= s_axis_tlast;

        r1_valid_reg <= r0_valid_reg;
        r1_data_reg <= r0_data_reg & lane_mask(r0_keep_reg);
        r1_keep_reg <= r0_keep_reg;
        r1_open_reg <= open_lanes;
        r1_close_reg <= close_lanes;
        r1_last_reg <= r0_last_reg;

        r2_valid_reg <= r1_valid_reg;
        r2_data_reg <= r1_data_reg;
        r2_keep_reg <= r1_keep_reg;
        r2_has_open_reg <= from_open[7];
        r2_after_open_reg <= {from_open[6:0], 1'b0};
        r2_close_reg <= r1_close_reg;
        r2_from_close_reg <= at_or_after_first(r1_close_reg);
        r2_last_reg <= r1_last_reg;

        r3_valid_reg <= r2_valid_reg;
        r3_data_reg <= r2_data_reg;
        r3_whole_zero_bytes_reg <= lanes_from_top(~r2_keep_reg);
        r3_has_open_reg <= r2_has_open_reg;
        r3_seek_lanes_reg <= r2_after_open_reg & ~seek_from_close & r2_keep_reg;
        r3_seek_closes_reg <= seek_close != 8'd0;
        r3_seek_zero_bytes_reg <= lanes_from_top(seek_from_close);
        r3_in_lanes_reg <= ~r2_from_close_reg & r2_keep_reg;
        r3_in_closes_reg <= r2_close_reg != 8'd0;
        r3_in_zero_bytes_reg <= lanes_from_top(r2_from_close_reg);
        r3_last_reg <= r2_last_reg;

        r4_valid_reg <= r3_valid_reg;
        if (r3_valid_reg) begin
            r4_whole_data_reg <= r3_data_reg;
            r4_tag_data_reg <= r3_data_reg & lane_mask(tag_lanes);
            r4_tag_update_reg <= phase_reg != PHASE_DONE;
            r4_whole_zero_bytes_reg <= r3_whole_zero_bytes_reg;
            r4_tag_zero_bytes_reg <= next_tag_zero_bytes;
            r4_use_tag_reg <= next_phase == PHASE_DONE && next_tag_nonempty;
            r4_last_reg <= r3_last_reg;
            if (r3_last_reg) begin
                phase_reg <= PHASE_SEEK_OPEN;
                tag_nonempty_reg <= 1'b0;
                tag_zero_bytes_reg <= 4'd0;
            end else begin
                phase_reg <= next_phase;
                tag_nonempty_reg <= next_tag_nonempty;
                tag_zero_bytes_reg <= next_tag_zero_bytes;
            end
        end

        r5_valid_reg <= r4_valid_reg;
        r5_whole_term_reg <= whole_term;
        r5_tag_term_reg <= tag_term;
        r5_tag_update_reg <= r4_tag_update_reg;
        r5_whole_zero_bytes_reg <= r4_whole_zero_bytes_reg;
        r5_tag_zero_bytes_reg <= r4_tag_zero_bytes_reg;
        r5_use_tag_reg <= r4_use_tag_reg;
        r5_last_reg <= r4_last_reg;

        r6_valid_reg <= r5_valid_reg && r5_last_reg;
        if (r5_valid_reg) begin
            whole_state_reg <= r5_last_reg ? 16'd0 : whole_next;
            tag_state_reg <= r5_last_reg ? 16'd0 : tag_next;
            r6_state_reg <= r5_use_tag_reg ? tag_next : whole_next;
            r6_zero_bytes_reg <= r5_use_tag_reg ? r5_tag_zero_bytes_reg : r5_whole_zero_bytes_reg;
        end

        r7_valid_reg <= r6_valid_reg;
        out_valid_reg <= r7_valid_reg;
    end

    if (rst) begin
        r0_valid_reg <= 1'b0;
        r1_valid_reg <= 1'b0;
        r2_valid_reg <= 1'b0;
        r3_valid_reg <= 1'b0;
        r4_valid_reg <= 1'b0;
        r5_valid_reg <= 1'b0;
        r6_valid_reg <= 1'b0;
        r7_valid_reg <= 1'b0;
        out_valid_reg <= 1'b0;
        phase_reg <= PHASE_SEEK_OPEN;
        tag_nonempty_reg <= 1'b0;
        tag_zero_bytes_reg <= 4'd0;
        whole_state_reg <= 16'd0;
        tag_state_reg <= 16'd0;
    end
end

assign m_axis_tdata = {2'b00, unshifted[13:0]};
assign m_axis_tvalid = out_valid_reg;
assign m_axis_tlast = 1'b1;

endmodule

`resetall
