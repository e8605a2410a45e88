// token_bucket: per-tenant token-bucket rate limiter, state in block RAM, one decision a clock.
//
// Function:   ember_store::rate_limit, bit for bit. Each tenant has a rate (tokens a tick, 16
//             bits), a burst (32 bits), a token count and the tick of its last refill. A check
//             at tick `now` for `cost` tokens refills min(elapsed * rate, burst) tokens
//             (elapsed = now - last, wrapping at 2^32), caps the bucket at the burst, sets last
//             = now, and takes the tokens when there are enough. A configure sets the rate and
//             burst and fills the bucket at `now`. Tenants start unconfigured (all zero).
// Interface:  s_axis: one request a beat (no tkeep, tlast implied): tdata[31:0] now (ticks),
//             tdata[63:32] cost (check) or burst (configure), tdata[79:64] rate (configure),
//             tdata[95:80] tenant (the low TENANT_BITS bits are used), tdata[96] operation: 0
//             check, 1 configure. m_axis: one beat a request, tdata[31:0] tokens left after it,
//             tdata[32] = 1 when a check was allowed (1 for a configure); tlast = 1.
// Throughput: one request a clock, back-to-back requests of one tenant included: the state a
//             request writes is forwarded to the next request of that tenant, whose read it
//             overtook. After reset, 2^TENANT_BITS clocks sweep the table to zero (sink not
//             ready meanwhile).
// Latency:    2 clocks from a request's handshake to its m_axis_tvalid.
// Back-pressure: the pipeline advances when m_axis can take a result and no sweep runs.
`resetall
`default_nettype none

module token_bucket #(
    // Tenants, as a power of two. 8 (256 tenants x 112 bits) fits two iCE40 RAM columns.
    parameter TENANT_BITS = 8
) (
    input  wire         clk,
    input  wire         rst,

    input  wire [96:0]  s_axis_tdata,
    input  wire         s_axis_tvalid,
    output wire         s_axis_tready,

    output wire [39:0]  m_axis_tdata,
    output wire         m_axis_tvalid,
    input  wire         m_axis_tready,
    output wire         m_axis_tlast
);

generate
    if (TENANT_BITS < 1 || TENANT_BITS > 16) begin : g_invalid
        // Stops elaboration: the tenant field has 16 bits.
        token_bucket_invalid_parameters invalid();
    end
endgenerate

localparam TENANT_COUNT = 1 << TENANT_BITS;
// A tenant's state: {rate, burst, tokens, last tick}.
localparam STATE_BITS = 16 + 32 + 32 + 32;

reg                   sweeping_reg = 1'b1;
reg [TENANT_BITS-1:0] sweep_tenant_reg = {TENANT_BITS{1'b0}};

reg        out_valid_reg = 1'b0;
reg [39:0] out_data_reg = 40'd0;
wire advance = (!out_valid_reg || m_axis_tready) && !sweeping_reg;
assign s_axis_tready = advance;

reg [STATE_BITS-1:0] table_mem [0:TENANT_COUNT-1];

// Stage 0: input register.
reg        r0_valid_reg = 1'b0;
reg [96:0] r0_request_reg = 97'd0;

// Stage 1: the request and its tenant's state as read.
reg                   r1_valid_reg = 1'b0;
reg                   r1_configure_reg = 1'b0;
reg [TENANT_BITS-1:0] r1_tenant_reg = {TENANT_BITS{1'b0}};
reg [31:0]            r1_now_reg = 32'd0;
reg [31:0]            r1_amount_reg = 32'd0;  // cost, or burst for a configure
reg [15:0]            r1_rate_reg = 16'd0;
reg [STATE_BITS-1:0]  r1_read_reg = {STATE_BITS{1'b0}};

// The last state written, forwarded to the read it overtook: the request leaving stage 1
// writes its tenant at the clock edge that reads the next request's tenant.
reg                   forward_reg = 1'b0;
reg [STATE_BITS-1:0]  last_write_state_reg = {STATE_BITS{1'b0}};

wire [TENANT_BITS-1:0] r0_tenant = r0_request_reg[80 +: TENANT_BITS];

// Stage 1 logic: the decision.
wire [STATE_BITS-1:0] state = forward_reg ? last_write_state_reg : r1_read_reg;
wire [15:0] rate = state[111:96];
wire [31:0] burst = state[95:64];
wire [31:0] tokens = state[63:32];
wire [31:0] last_tick = state[31:0];

wire [31:0] elapsed = r1_now_reg - last_tick;
wire [47:0] product = elapsed * rate;
wire [31:0] refill = product > {16'd0, burst} ? burst : product[31:0];
wire [32:0] sum = {1'b0, tokens} + {1'b0, refill};
wire [31:0] tokens_now = sum > {1'b0, burst} ? burst : sum[31:0];
wire allowed = tokens_now >= r1_amount_reg;
wire [31:0] tokens_left = allowed ? tokens_now - r1_amount_reg : tokens_now;

wire [STATE_BITS-1:0] next_state = r1_configure_reg
    ? {r1_rate_reg, r1_amount_reg, r1_amount_reg, r1_now_reg}
    : {rate, burst, tokens_left, r1_now_reg};
wire write = sweeping_reg || (advance && r1_valid_reg);
wire [TENANT_BITS-1:0] write_tenant = sweeping_reg ? sweep_tenant_reg : r1_tenant_reg;
wire [STATE_BITS-1:0] write_state = sweeping_reg ? {STATE_BITS{1'b0}} : next_state;

// Unused request bits: the tenant field above TENANT_BITS.
/* verilator lint_off UNUSEDSIGNAL */
wire [15:0] tenant_field = r0_request_reg[95:80];
/* verilator lint_on UNUSEDSIGNAL */

always @(posedge clk) begin
    if (advance) begin
        r0_valid_reg <= s_axis_tvalid;
        r0_request_reg <= s_axis_tdata;

        r1_valid_reg <= r0_valid_reg;
        r1_configure_reg <= r0_request_reg[96];
        r1_tenant_reg <= r0_tenant;
        r1_now_reg <= r0_request_reg[31:0];
        r1_amount_reg <= r0_request_reg[63:32];
        r1_rate_reg <= r0_request_reg[79:64];
        r1_read_reg <= table_mem[r0_tenant];
        forward_reg <= r1_valid_reg && r1_tenant_reg == r0_tenant;

        out_valid_reg <= r1_valid_reg;
        out_data_reg <= r1_configure_reg ? {8'd1, r1_amount_reg} : {7'd0, allowed, tokens_left};
    end else if (m_axis_tready) begin
        out_valid_reg <= 1'b0;
    end

    if (write) begin
        table_mem[write_tenant] <= write_state;
        last_write_state_reg <= write_state;
    end

    if (sweeping_reg) begin
        sweep_tenant_reg <= sweep_tenant_reg + 1'b1;
        if (sweep_tenant_reg == TENANT_COUNT - 1) begin
            sweeping_reg <= 1'b0;
        end
    end

    if (rst) begin
        r0_valid_reg <= 1'b0;
        r1_valid_reg <= 1'b0;
        out_valid_reg <= 1'b0;
        forward_reg <= 1'b0;
        sweeping_reg <= 1'b1;
        sweep_tenant_reg <= {TENANT_BITS{1'b0}};
    end
end

assign m_axis_tdata = out_data_reg;
assign m_axis_tvalid = out_valid_reg;
assign m_axis_tlast = 1'b1;

endmodule

`resetall
