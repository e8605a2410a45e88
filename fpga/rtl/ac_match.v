// ac_match: Aho-Corasick multi-pattern matcher, one byte a clock, automaton in block RAM.
//
// Function:   the text filter of ember_store::text_filter, bit for bit: a DFA over byte
//             classes, with a class table (256 entries) and a transition table (one entry per
//             state and class: the next state and whether a pattern ends on entering it). For
//             each packet (one text) on s_axis, one beat on m_axis with the number of byte
//             positions where some pattern ends and the index of the first such byte.
// Interface:  s_axis: 8-bit tdata, one text byte a beat; tkeep[0] = 0 marks a beat with no
//             byte (only the single beat of an empty text); tlast ends the text.
//             m_axis: tdata[31:0] the count of match ends, tdata[63:32] the index of the first
//             (all ones when none); tlast = 1.
//             cfg: a write port for the tables, used while no text is streaming: cfg_valid,
//             cfg_select (0: class table, address = byte; 1: transition table, address =
//             state * 2^CLASS_BITS + class, data = {accepting, next state}), cfg_address,
//             cfg_data. The tables come from ember_fpga::modules::AcMatchSim::load, which
//             generates them from a TextFilter.
// Throughput: one byte a clock for one engine: the state register is the transition RAM's
//             read register, so the DFA loop is one RAM read. More engines would share each
//             dual-port RAM two by two.
// Latency:    3 clocks from the handshake of a text's last beat to its m_axis_tvalid.
// Back-pressure: the pipeline advances when m_axis can take a result:
//             s_axis_tready = !m_axis_tvalid || m_axis_tready.
`resetall
`default_nettype none

module ac_match #(
    // DFA states, as a power of two (state 0 is the root).
    parameter STATE_BITS = 8,
    // Byte classes, as a power of two (class 0 is every byte that is in no pattern).
    parameter CLASS_BITS = 5
) (
    input  wire        clk,
    input  wire        rst,

    input  wire [7:0]  s_axis_tdata,
    input  wire        s_axis_tkeep,
    input  wire        s_axis_tvalid,
    output wire        s_axis_tready,
    input  wire        s_axis_tlast,

    output wire [63:0] m_axis_tdata,
    output wire        m_axis_tvalid,
    input  wire        m_axis_tready,
    output wire        m_axis_tlast,

    input  wire        cfg_valid,
    input  wire        cfg_select,
    input  wire [15:0] cfg_address,
    input  wire [15:0] cfg_data
);

generate
    if (STATE_BITS < 1 || CLASS_BITS < 1 || STATE_BITS + CLASS_BITS > 16 || STATE_BITS > 15 || CLASS_BITS > 8) begin : g_invalid
        // Stops elaboration: the tables must be addressable by cfg_address and hold
        // {accepting, state} in cfg_data.
        ac_match_invalid_parameters invalid();
    end
endgenerate

localparam TRANSITION_COUNT = 1 << (STATE_BITS + CLASS_BITS);

reg [CLASS_BITS-1:0] class_mem [0:255];
reg [STATE_BITS:0]   transition_mem [0:TRANSITION_COUNT-1];

reg out_valid_reg = 1'b0;
wire advance = !out_valid_reg || m_axis_tready;
assign s_axis_tready = advance;

// Stage 0: input register.
reg       r0_valid_reg = 1'b0;
reg [7:0] r0_byte_reg = 8'd0;
reg       r0_keep_reg = 1'b0;
reg       r0_last_reg = 1'b0;
reg       r0_first_reg = 1'b0;
// Whether the next beat accepted starts a text.
reg       at_text_start_reg = 1'b1;

// Stage 1: the byte's class.
reg                  r1_valid_reg = 1'b0;
reg [CLASS_BITS-1:0] r1_class_reg = {CLASS_BITS{1'b0}};
reg                  r1_keep_reg = 1'b0;
reg                  r1_last_reg = 1'b0;
reg                  r1_first_reg = 1'b0;

// Stage 2: the DFA state after the byte, straight out of the transition RAM.
reg                r2_valid_reg = 1'b0;
reg [STATE_BITS:0] state_reg = {(STATE_BITS+1){1'b0}};  // {accepting, state}
reg                r2_keep_reg = 1'b0;
reg                r2_last_reg = 1'b0;

// Stage 3: counting, per text.
reg [31:0] position_reg = 32'd0;
reg [31:0] match_count_reg = 32'd0;
reg [31:0] first_match_end_reg = 32'hFFFFFFFF;
reg [63:0] out_data_reg = 64'd0;

wire [STATE_BITS-1:0] current_state = r1_first_reg ? {STATE_BITS{1'b0}} : state_reg[STATE_BITS-1:0];
wire matched = r2_keep_reg && state_reg[STATE_BITS];
wire [31:0] match_count = match_count_reg + {31'd0, matched};
wire [31:0] first_match_end = (matched && first_match_end_reg == 32'hFFFFFFFF) ? position_reg : first_match_end_reg;

// Unused configuration bits: above the table widths.
/* verilator lint_off UNUSEDSIGNAL */
wire [31:0] cfg_unused = {cfg_address, cfg_data};
/* verilator lint_on UNUSEDSIGNAL */

always @(posedge clk) begin
    if (cfg_valid && !cfg_select) begin
        class_mem[cfg_address[7:0]] <= cfg_data[CLASS_BITS-1:0];
    end
    if (cfg_valid && cfg_select) begin
        transition_mem[cfg_address[STATE_BITS+CLASS_BITS-1:0]] <= cfg_data[STATE_BITS:0];
    end

    if (advance) begin
        r0_valid_reg <= s_axis_tvalid;
        r0_byte_reg <= s_axis_tdata;
        r0_keep_reg <= s_axis_tkeep;
        r0_last_reg <= s_axis_tlast;
        r0_first_reg <= at_text_start_reg;
        if (s_axis_tvalid) begin
            at_text_start_reg <= s_axis_tlast;
        end

        r1_valid_reg <= r0_valid_reg;
        r1_class_reg <= class_mem[r0_byte_reg];
        r1_keep_reg <= r0_keep_reg;
        r1_last_reg <= r0_last_reg;
        r1_first_reg <= r0_first_reg;

        r2_valid_reg <= r1_valid_reg;
        r2_keep_reg <= r1_valid_reg && r1_keep_reg;
        r2_last_reg <= r1_last_reg;
        if (r1_valid_reg && r1_keep_reg) begin
            state_reg <= transition_mem[{current_state, r1_class_reg}];
        end

        out_valid_reg <= r2_valid_reg && r2_last_reg;
        out_data_reg <= {first_match_end, match_count};
        if (r2_valid_reg) begin
            if (r2_last_reg) begin
                position_reg <= 32'd0;
                match_count_reg <= 32'd0;
                first_match_end_reg <= 32'hFFFFFFFF;
            end else begin
                position_reg <= position_reg + {31'd0, r2_keep_reg};
                match_count_reg <= match_count;
                first_match_end_reg <= first_match_end;
            end
        end
    end

    if (rst) begin
        r0_valid_reg <= 1'b0;
        r1_valid_reg <= 1'b0;
        r2_valid_reg <= 1'b0;
        out_valid_reg <= 1'b0;
        at_text_start_reg <= 1'b1;
        position_reg <= 32'd0;
        match_count_reg <= 32'd0;
        first_match_end_reg <= 32'hFFFFFFFF;
    end
end

assign m_axis_tdata = out_data_reg;
assign m_axis_tvalid = out_valid_reg;
assign m_axis_tlast = 1'b1;

endmodule

`resetall
