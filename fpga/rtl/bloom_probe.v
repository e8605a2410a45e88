// bloom_probe: Bloom filter probes (BF.ADD / BF.EXISTS) on a banked bit array, one request a
// clock, with a clear sweep.
//
// Function:   the partitioned Bloom filter of ember_store::bloom::BloomFilter, bit for bit:
//             SLICE_COUNT slices of 2^SLICE_BITS_LOG2 bits, one block-RAM bank a slice; probe
//             i of a 64-bit item hash h tests (and for an insert sets) bit
//             (h[31:0] + i * h[63:32]) mod 2^SLICE_BITS_LOG2 of slice i, so all probes of a
//             request run in the same clock.
// Interface:  s_axis: one request a beat (no tkeep: a request has no byte lanes; tlast is
//             implied): tdata[63:0] the item hash, tdata[65:64] the operation: 0 query
//             (BF.EXISTS), 1 insert (BF.ADD), 2 clear. m_axis: one beat a request, tdata[0] =
//             1 when a query found every bit set or an insert set at least one new bit
//             (BF.ADD's reply), 0 for a clear; tlast = 1.
// Throughput: one request a clock, back-to-back requests on the same bits included (the last
//             write is forwarded to a read that it overtook). A clear takes 2^(SLICE_BITS_LOG2
//             - WORD_BITS_LOG2) clocks (256 with the defaults) to sweep every word to zero;
//             the sink is not ready meanwhile. The same sweep runs after reset.
// Latency:    2 clocks from a request's handshake to its m_axis_tvalid.
// Back-pressure: the pipeline advances when m_axis can take a result and no sweep runs.
`resetall
`default_nettype none

module bloom_probe #(
    // Slices (probes per item); one RAM bank each. 1..16, as ember_store::bloom allows.
    parameter SLICE_COUNT = 4,
    // Bits per slice, as a power of two; at least WORD_BITS_LOG2.
    parameter SLICE_BITS_LOG2 = 12,
    // RAM word width, as a power of two: 16-bit words fit iCE40 (256 x 16) and ECP5 RAMs.
    parameter WORD_BITS_LOG2 = 4
) (
    input  wire        clk,
    input  wire        rst,

    input  wire [65:0] s_axis_tdata,
    input  wire        s_axis_tvalid,
    output wire        s_axis_tready,

    output wire [7:0]  m_axis_tdata,
    output wire        m_axis_tvalid,
    input  wire        m_axis_tready,
    output wire        m_axis_tlast
);

localparam WORD_BITS = 1 << WORD_BITS_LOG2;
localparam ADDRESS_BITS = SLICE_BITS_LOG2 - WORD_BITS_LOG2;
localparam WORD_COUNT = 1 << ADDRESS_BITS;

localparam [1:0] OP_QUERY = 2'd0;
localparam [1:0] OP_INSERT = 2'd1;
localparam [1:0] OP_CLEAR = 2'd2;

generate
    if (SLICE_COUNT < 1 || SLICE_COUNT > 16 || SLICE_BITS_LOG2 <= WORD_BITS_LOG2 || SLICE_BITS_LOG2 > 30) begin : g_invalid
        // Stops elaboration: the parameters are out of range.
        bloom_probe_invalid_parameters invalid();
    end
endgenerate

// Clear sweep: runs after reset and for a clear request; the pipeline is frozen meanwhile.
reg                    sweeping_reg = 1'b1;
reg [ADDRESS_BITS-1:0] sweep_address_reg = {ADDRESS_BITS{1'b0}};

reg out_valid_reg = 1'b0;
reg out_hit_reg = 1'b0;
wire advance = (!out_valid_reg || m_axis_tready) && !sweeping_reg;
assign s_axis_tready = advance;

// Stage 0: input register.
reg        r0_valid_reg = 1'b0;
// Only the low SLICE_BITS_LOG2 bits of each hash half index a slice; synthesis drops the rest.
/* verilator lint_off UNUSEDSIGNAL */
reg [63:0] r0_hash_reg = 64'd0;
/* verilator lint_on UNUSEDSIGNAL */
reg [1:0]  r0_op_reg = 2'd0;

// Stage 1: the words read for the request (per bank, below), and the request.
reg        r1_valid_reg = 1'b0;
reg [1:0]  r1_op_reg = 2'd0;
// The words read for this request predate a sweep that ran since: they are all zero now.
reg        r1_stale_reg = 1'b0;

wire r1_insert = r1_valid_reg && r1_op_reg == OP_INSERT;
wire r1_clear = r1_valid_reg && r1_op_reg == OP_CLEAR;
wire [SLICE_COUNT-1:0] hits;

genvar slice;
generate
    for (slice = 0; slice < SLICE_COUNT; slice = slice + 1) begin : g_slice
        wire [SLICE_BITS_LOG2-1:0] index =
            r0_hash_reg[SLICE_BITS_LOG2-1:0] + slice * r0_hash_reg[32 +: SLICE_BITS_LOG2];

        reg [WORD_BITS-1:0]      bank [0:WORD_COUNT-1];
        reg [WORD_BITS-1:0]      read_word_reg = {WORD_BITS{1'b0}};
        reg [ADDRESS_BITS-1:0]   address_reg = {ADDRESS_BITS{1'b0}};
        reg [WORD_BITS-1:0]      bit_mask_reg = {WORD_BITS{1'b0}};  // one-hot: the probed bit
        reg [WORD_BITS-1:0]      last_write_word_reg = {WORD_BITS{1'b0}};
        // The request leaving stage 1 wrote this word at the clock edge that read it here: the
        // read returned the word from before that write.
        reg                      forward_reg = 1'b0;

        wire [ADDRESS_BITS-1:0] read_address = index[SLICE_BITS_LOG2-1:WORD_BITS_LOG2];
        // The word as it is now: the read, unless a write overtook it.
        wire [WORD_BITS-1:0] word = r1_stale_reg ? {WORD_BITS{1'b0}}
            : (forward_reg ? last_write_word_reg : read_word_reg);
        wire [WORD_BITS-1:0] set_word = word | bit_mask_reg;
        assign hits[slice] = |(word & bit_mask_reg);

        wire write = sweeping_reg || (advance && r1_insert);
        wire [ADDRESS_BITS-1:0] write_address = sweeping_reg ? sweep_address_reg : address_reg;
        wire [WORD_BITS-1:0] write_word = sweeping_reg ? {WORD_BITS{1'b0}} : set_word;

        always @(posedge clk) begin
            if (advance) begin
                read_word_reg <= bank[read_address];
                address_reg <= read_address;
                bit_mask_reg <= {{(WORD_BITS-1){1'b0}}, 1'b1} << index[WORD_BITS_LOG2-1:0];
                forward_reg <= r1_insert && address_reg == read_address;
            end
            if (write) begin
                bank[write_address] <= write_word;
                last_write_word_reg <= write_word;
            end
            if (rst) begin
                forward_reg <= 1'b0;
            end
        end
    end
endgenerate

always @(posedge clk) begin
    if (advance) begin
        r0_valid_reg <= s_axis_tvalid;
        r0_hash_reg <= s_axis_tdata[63:0];
        r0_op_reg <= s_axis_tdata[65:64];

        r1_valid_reg <= r0_valid_reg;
        r1_op_reg <= r0_op_reg;
        // The request moving into stage 1 read its words at this edge; a clear leaving stage 1
        // now sweeps them away.
        r1_stale_reg <= r1_clear;

        out_valid_reg <= r1_valid_reg;
        out_hit_reg <= r1_op_reg == OP_QUERY ? &hits : (r1_op_reg == OP_INSERT ? ~&hits : 1'b0);
        if (r1_clear) begin
            sweeping_reg <= 1'b1;
            sweep_address_reg <= {ADDRESS_BITS{1'b0}};
        end
    end else if (m_axis_tready) begin
        // A sweep froze the pipeline: the result may still leave.
        out_valid_reg <= 1'b0;
    end

    if (sweeping_reg) begin
        sweep_address_reg <= sweep_address_reg + 1'b1;
        if (sweep_address_reg == WORD_COUNT - 1) begin
            sweeping_reg <= 1'b0;
        end
    end

    if (rst) begin
        r0_valid_reg <= 1'b0;
        r1_valid_reg <= 1'b0;
        r1_stale_reg <= 1'b0;
        out_valid_reg <= 1'b0;
        sweeping_reg <= 1'b1;
        sweep_address_reg <= {ADDRESS_BITS{1'b0}};
    end
end

assign m_axis_tdata = {7'd0, out_hit_reg};
assign m_axis_tvalid = out_valid_reg;
assign m_axis_tlast = 1'b1;

endmodule

`resetall
