// dot_i8: int8 dot product of two vectors on an AXI-Stream, 16 multiply-accumulates a clock.
//
// Function:   for each packet on s_axis, one beat on m_axis whose tdata is the sum of a[i]*b[i]
//             over the packet's lanes, accumulated exactly in 32 bits; bit for bit
//             ember_kernels::dot::dot_i8, the embedding-scoring kernel.
// Interface:  s_axis: 256-bit tdata holding 16 lanes; lane i carries a[i] in tdata[8i+7:8i] and
//             b[i] in tdata[128+8i+7:128+8i], both two's complement; tkeep[i] says lane i
//             holds a pair (lanes outside tkeep count as zero, whatever they carry); tlast
//             ends a vector. A single beat with tkeep = 0 is the empty vector (result 0).
//             m_axis: tdata[31:0] the dot product, tlast = 1.
// Throughput: one beat (16 pairs) a clock, back-to-back vectors included.
// Latency:    6 clocks from the handshake of a vector's last beat to its m_axis_tvalid:
//             input register, multipliers, a 4-level adder tree with a register after every
//             level, then the accumulator, whose sum is also the output register.
// Back-pressure: the pipeline advances when m_axis can take a result:
//             s_axis_tready = !m_axis_tvalid || m_axis_tready.
`resetall
`default_nettype none

module dot_i8 (
    input  wire         clk,
    input  wire         rst,

    input  wire [255:0] s_axis_tdata,
    input  wire [15:0]  s_axis_tkeep,
    input  wire         s_axis_tvalid,
    output wire         s_axis_tready,
    input  wire         s_axis_tlast,

    output wire [31:0]  m_axis_tdata,
    output wire         m_axis_tvalid,
    input  wire         m_axis_tready,
    output wire         m_axis_tlast
);

localparam LANES = 16;
// Pipeline depth from the input register to the adder tree's root; valid and last travel
// beside the data in shift registers of this length.
localparam TREE_STAGES = 6;

reg out_valid_reg = 1'b0;
wire advance = !out_valid_reg || m_axis_tready;
assign s_axis_tready = advance;

// Stage 0: input register.
reg [255:0] r0_data_reg = 256'd0;
reg [15:0]  r0_keep_reg = 16'd0;

// valid and last of stages 0..5.
reg [TREE_STAGES-1:0] valid_pipe_reg = {TREE_STAGES{1'b0}};
reg [TREE_STAGES-1:0] last_pipe_reg = {TREE_STAGES{1'b0}};

// Stage 1: products. Stages 2..5: the adder tree, one level a stage.
reg signed [15:0] product_reg [0:15];
reg signed [16:0] sum2_reg [0:7];
reg signed [17:0] sum4_reg [0:3];
reg signed [18:0] sum8_reg [0:1];
reg signed [19:0] sum16_reg = 20'sd0;

// Stage 6: accumulator and output register.
reg signed [31:0] accumulator_reg = 32'sd0;
reg        [31:0] out_data_reg = 32'd0;

wire signed [31:0] accumulated = accumulator_reg + {{12{sum16_reg[19]}}, sum16_reg};

integer index;
always @(posedge clk) begin
    if (advance) begin
        r0_data_reg <= s_axis_tdata;
        r0_keep_reg <= s_axis_tkeep;
        valid_pipe_reg <= {valid_pipe_reg[TREE_STAGES-2:0], s_axis_tvalid};
        last_pipe_reg <= {last_pipe_reg[TREE_STAGES-2:0], s_axis_tlast};

        for (index = 0; index < LANES; index = index + 1) begin
            product_reg[index] <= r0_keep_reg[index]
                ? $signed(r0_data_reg[8*index +: 8]) * $signed(r0_data_reg[128 + 8*index +: 8])
                : 16'sd0;
        end
        for (index = 0; index < 8; index = index + 1) begin
            sum2_reg[index] <= product_reg[2*index] + product_reg[2*index + 1];
        end
        for (index = 0; index < 4; index = index + 1) begin
            sum4_reg[index] <= sum2_reg[2*index] + sum2_reg[2*index + 1];
        end
        for (index = 0; index < 2; index = index + 1) begin
            sum8_reg[index] <= sum4_reg[2*index] + sum4_reg[2*index + 1];
        end
        sum16_reg <= sum8_reg[0] + sum8_reg[1];

        if (valid_pipe_reg[TREE_STAGES-1]) begin
            accumulator_reg <= last_pipe_reg[TREE_STAGES-1] ? 32'sd0 : accumulated;
            out_data_reg <= accumulated;
        end
        out_valid_reg <= valid_pipe_reg[TREE_STAGES-1] && last_pipe_reg[TREE_STAGES-1];
    end

    if (rst) begin
        valid_pipe_reg <= {TREE_STAGES{1'b0}};
        accumulator_reg <= 32'sd0;
        out_valid_reg <= 1'b0;
    end
end

assign m_axis_tdata = out_data_reg;
assign m_axis_tvalid = out_valid_reg;
assign m_axis_tlast = 1'b1;

endmodule

`resetall
