// resp_tokenizer: splits a RESP request stream into arguments and requests, one byte a clock,
// and reports protocol errors at the byte offset where ember-resp's parser reports them.
//
// Function:   the multibulk grammar of ember_resp::RequestParser with Limits::default(), bit
//             for bit: `*N\r\n` then N arguments `$L\r\n<L bytes>\r\n`; the byte after each
//             '\r' and the two bytes after each argument are skipped unchecked, as Redis and
//             Ember do; `*0` and negative counts are empty requests. Numbers follow Redis's
//             string2ll (no '+', no leading zeros, at most 20 characters); counts above
//             2^31-1 and lengths above BULK_LEN_MAX are invalid; a header line with no '\r'
//             within INLINE_LEN_MAX + 2 bytes is "too big". A request that does not start
//             with '*' is an inline (telnet) request: the tokenizer reports it and hands the
//             rest of the stream to software, which owns inline parsing.
// Interface:  s_axis: one packet is one connection's byte stream; 8-bit tdata, one byte a
//             beat; tkeep[0] = 0 marks a beat with no byte (an empty stream's single beat).
//             m_axis: one event a beat, tdata[3:0] the kind, tdata[35:4] a byte offset from
//             the start of the stream, tdata[67:36] a value, tdata[75:68] a byte:
//               1 ARGUMENT    offset of its first data byte, value = its length;
//               2 REQUEST     offset just past the request, value = its argument count;
//               3 ERROR       offset where it was detected, value = code (1 invalid multibulk
//                             length, 2 invalid bulk length, 3 expected '$' (byte = the byte
//                             found), 4 multibulk count too big, 5 bulk count too big);
//               4 INLINE      offset of the inline request;
//               5 STREAM_END  offset = stream length; one per packet, always last.
//             After ERROR or INLINE the rest of the packet is skipped. ARGUMENT events of a
//             request that the stream ends inside are not followed by its REQUEST.
// Throughput: one byte a clock; a packet's last byte that also ends a request costs one more
//             clock (two events).
// Latency:    2 clocks from a byte's handshake to its event's m_axis_tvalid.
// Back-pressure: the stream advances when m_axis can take an event.
`resetall
`default_nettype none

module resp_tokenizer #(
    // Largest bulk length (ember_resp Limits::bulk_len_max); below 10^9 (9 digits).
    parameter [29:0] BULK_LEN_MAX = 30'd536870912,
    // Longest header line (ember_resp Limits::inline_len_max).
    parameter INLINE_LEN_MAX = 65536
) (
    input  wire        clk,
    input  wire        rst,

    input  wire [7:0]  s_axis_tdata,
    input  wire        s_axis_tkeep,
    input  wire        s_axis_tvalid,
    output wire        s_axis_tready,
    input  wire        s_axis_tlast,

    output wire [79:0] m_axis_tdata,
    output wire        m_axis_tvalid,
    input  wire        m_axis_tready,
    output wire        m_axis_tlast
);

generate
    if (BULK_LEN_MAX >= 30'd1000000000 || INLINE_LEN_MAX < 20 || INLINE_LEN_MAX > 1048576) begin : g_invalid
        // Stops elaboration: lengths are parsed as at most 9 digits; header counts are 21 bits.
        resp_tokenizer_invalid_parameters invalid();
    end
endgenerate

localparam [3:0] EVENT_ARGUMENT = 4'd1;
localparam [3:0] EVENT_REQUEST = 4'd2;
localparam [3:0] EVENT_ERROR = 4'd3;
localparam [3:0] EVENT_INLINE = 4'd4;
localparam [3:0] EVENT_STREAM_END = 4'd5;

localparam [31:0] ERROR_MULTIBULK_LENGTH = 32'd1;
localparam [31:0] ERROR_BULK_LENGTH = 32'd2;
localparam [31:0] ERROR_EXPECTED_BULK = 32'd3;
localparam [31:0] ERROR_MULTIBULK_TOO_BIG = 32'd4;
localparam [31:0] ERROR_BULK_TOO_BIG = 32'd5;

localparam [2:0] STATE_REQUEST = 3'd0;       // expecting a request's first byte
localparam [2:0] STATE_HEADER = 3'd1;        // inside a '*' or '$' header line
localparam [2:0] STATE_HEADER_SKIP = 3'd2;   // the byte after the header's '\r'
localparam [2:0] STATE_DOLLAR = 3'd3;        // expecting an argument's '$'
localparam [2:0] STATE_DATA = 3'd4;          // inside an argument's data and its 2 end bytes
localparam [2:0] STATE_DISCARD = 3'd5;       // after an error or inline request

localparam [20:0] HEADER_BYTES_MAX = INLINE_LEN_MAX + 2;

// 9223372036854775808 = |i64::MIN|, the largest magnitude string2ll takes, digit by digit.
function [3:0] min_i64_digit;
    input [4:0] position;
    begin
        case (position)
            5'd0: min_i64_digit = 4'd9;  5'd1: min_i64_digit = 4'd2;  5'd2: min_i64_digit = 4'd2;
            5'd3: min_i64_digit = 4'd3;  5'd4: min_i64_digit = 4'd3;  5'd5: min_i64_digit = 4'd7;
            5'd6: min_i64_digit = 4'd2;  5'd7: min_i64_digit = 4'd0;  5'd8: min_i64_digit = 4'd3;
            5'd9: min_i64_digit = 4'd6;  5'd10: min_i64_digit = 4'd8; 5'd11: min_i64_digit = 4'd5;
            5'd12: min_i64_digit = 4'd4; 5'd13: min_i64_digit = 4'd7; 5'd14: min_i64_digit = 4'd7;
            5'd15: min_i64_digit = 4'd5; 5'd16: min_i64_digit = 4'd8; 5'd17: min_i64_digit = 4'd0;
            default: min_i64_digit = 4'd8;
        endcase
    end
endfunction

// Output: one event register, and one more for a packet end that shares its byte.
reg        out_valid_reg = 1'b0;
reg [79:0] out_data_reg = 80'd0;
reg        pending_valid_reg = 1'b0;
reg [79:0] pending_data_reg = 80'd0;
wire out_free = !out_valid_reg || m_axis_tready;
wire advance = out_free && !pending_valid_reg;
assign s_axis_tready = advance;

// Stage 0: input register.
reg       r0_valid_reg = 1'b0;
reg [7:0] r0_byte_reg = 8'd0;
reg       r0_keep_reg = 1'b0;
reg       r0_last_reg = 1'b0;

// Parser state.
reg [2:0]  state_reg = STATE_REQUEST;
reg [31:0] offset_reg = 32'd0;          // offset of the byte in stage 0
reg [31:0] marker_offset_reg = 32'd0;   // offset of the header's '*' or '$'
reg        bulk_header_reg = 1'b0;      // the header is a '$' (else '*')
reg [20:0] header_bytes_reg = 21'd0;    // bytes after the marker so far, saturating
reg [4:0]  chars_reg = 5'd0;            // characters of the number so far, saturating at 31
reg        negative_reg = 1'b0;
reg        digits_only_reg = 1'b1;
reg        zero_first_reg = 1'b0;
reg [33:0] value_reg = 34'd0;           // the first 10 digits
reg [1:0]  magnitude_order_reg = 2'd0;  // digits against |i64::MIN|: 0 equal, 1 less, 2 greater
reg        header_valid_reg = 1'b0;     // set at '\r': the number is valid for its header
reg        header_empty_reg = 1'b0;     // set at '\r': a '*' count <= 0
reg [30:0] arguments_left_reg = 31'd0;
reg [30:0] argument_count_reg = 31'd0;
reg [29:0] data_left_reg = 30'd0;

// The number so far, and with this byte.
wire [7:0] byte_in = r0_byte_reg;
wire is_digit = byte_in >= 8'h30 && byte_in <= 8'h39;
wire [3:0] digit = byte_in[3:0];
wire takes_sign = chars_reg == 5'd0 && byte_in == 8'h2D;
wire [4:0] digit_position = chars_reg - {4'd0, negative_reg};
wire [4:0] digit_count = chars_reg - {4'd0, negative_reg};

// Validity of the finished number (evaluated at '\r', from the registers).
wire parses = chars_reg != 5'd0 && chars_reg <= 5'd20 && digits_only_reg && digit_count != 5'd0
    && (!zero_first_reg || (digit_count == 5'd1 && !negative_reg))
    && (!negative_reg || digit_count < 5'd19 || magnitude_order_reg != 2'd2);
wire count_valid = parses && (negative_reg || (digit_count <= 5'd10 && value_reg <= 34'd2147483647));
wire length_valid = parses && !negative_reg && digit_count <= 5'd9 && value_reg[29:0] <= BULK_LEN_MAX
    && value_reg[33:30] == 4'd0;
wire count_empty = negative_reg || value_reg == 34'd0;

wire [20:0] header_bytes_next = header_bytes_reg + 21'd1;
wire [31:0] offset_next = offset_reg + 32'd1;

// Unused: the high bits of a count (counts above 2^31-1 are invalid before they are used).
/* verilator lint_off UNUSEDSIGNAL */
wire [2:0] value_high = value_reg[33:31];
/* verilator lint_on UNUSEDSIGNAL */

function [79:0] event_word;
    input [3:0]  kind;
    input [31:0] offset;
    input [31:0] value;
    input [7:0]  extra;
    begin
        event_word = {4'd0, extra, value, offset, kind};
    end
endfunction

// What this byte does: an event (or none) and the next parser state.
reg        event_valid;
reg [79:0] event_data;
reg [2:0]  state_next;
// Bytes after the marker once this byte is counted (for a packet that ends in a header line).
wire [20:0] header_bytes_at_end = state_reg != STATE_HEADER ? 21'd0
    : (r0_keep_reg ? header_bytes_next : header_bytes_reg);

always @* begin
    event_valid = 1'b0;
    event_data = 80'd0;
    state_next = state_reg;
    if (r0_valid_reg && r0_keep_reg) begin
        case (state_reg)
            STATE_REQUEST: begin
                if (byte_in == 8'h2A) begin
                    state_next = STATE_HEADER;
                end else begin
                    event_valid = 1'b1;
                    event_data = event_word(EVENT_INLINE, offset_reg, 32'd0, 8'd0);
                    state_next = STATE_DISCARD;
                end
            end
            STATE_HEADER: begin
                if (byte_in == 8'h0D) begin
                    state_next = STATE_HEADER_SKIP;
                end else if (header_bytes_next == HEADER_BYTES_MAX) begin
                    event_valid = 1'b1;
                    event_data = event_word(EVENT_ERROR, marker_offset_reg,
                        bulk_header_reg ? ERROR_BULK_TOO_BIG : ERROR_MULTIBULK_TOO_BIG, 8'd0);
                    state_next = STATE_DISCARD;
                end
            end
            STATE_HEADER_SKIP: begin
                if (!header_valid_reg) begin
                    event_valid = 1'b1;
                    event_data = event_word(EVENT_ERROR, marker_offset_reg,
                        bulk_header_reg ? ERROR_BULK_LENGTH : ERROR_MULTIBULK_LENGTH, 8'd0);
                    state_next = STATE_DISCARD;
                end else if (bulk_header_reg) begin
                    event_valid = 1'b1;
                    event_data = event_word(EVENT_ARGUMENT, offset_next, {2'd0, value_reg[29:0]}, 8'd0);
                    state_next = STATE_DATA;
                end else if (header_empty_reg) begin
                    event_valid = 1'b1;
                    event_data = event_word(EVENT_REQUEST, offset_next, 32'd0, 8'd0);
                    state_next = STATE_REQUEST;
                end else begin
                    state_next = STATE_DOLLAR;
                end
            end
            STATE_DOLLAR: begin
                if (byte_in == 8'h24) begin
                    state_next = STATE_HEADER;
                end else begin
                    event_valid = 1'b1;
                    event_data = event_word(EVENT_ERROR, offset_reg, ERROR_EXPECTED_BULK, byte_in);
                    state_next = STATE_DISCARD;
                end
            end
            STATE_DATA: begin
                if (data_left_reg == 30'd1) begin
                    if (arguments_left_reg == 31'd1) begin
                        event_valid = 1'b1;
                        event_data = event_word(EVENT_REQUEST, offset_next, {1'b0, argument_count_reg}, 8'd0);
                        state_next = STATE_REQUEST;
                    end else begin
                        state_next = STATE_DOLLAR;
                    end
                end
            end
            default: begin
                state_next = STATE_DISCARD;
            end
        endcase
    end
    // A stream that ends inside a header line longer than the limit: the parser's "too big".
    if (r0_valid_reg && r0_last_reg && !event_valid && state_next == STATE_HEADER) begin
        if (header_bytes_at_end >= INLINE_LEN_MAX) begin
            event_valid = 1'b1;
            event_data = event_word(EVENT_ERROR, marker_offset_reg,
                bulk_header_reg ? ERROR_BULK_TOO_BIG : ERROR_MULTIBULK_TOO_BIG, 8'd0);
        end
    end
end

wire [31:0] stream_length = offset_reg + {31'd0, r0_keep_reg};
wire [79:0] stream_end_event = event_word(EVENT_STREAM_END, stream_length, 32'd0, 8'd0);

always @(posedge clk) begin
    if (advance) begin
        r0_valid_reg <= s_axis_tvalid;
        r0_byte_reg <= s_axis_tdata;
        r0_keep_reg <= s_axis_tkeep;
        r0_last_reg <= s_axis_tlast;

        out_valid_reg <= r0_valid_reg && (event_valid || r0_last_reg);
        out_data_reg <= event_valid ? event_data : stream_end_event;
        pending_valid_reg <= r0_valid_reg && event_valid && r0_last_reg;
        pending_data_reg <= stream_end_event;

        if (r0_valid_reg) begin
            if (r0_last_reg) begin
                state_reg <= STATE_REQUEST;
                offset_reg <= 32'd0;
            end else begin
                state_reg <= state_next;
                offset_reg <= offset_reg + {31'd0, r0_keep_reg};
            end
        end

        if (r0_valid_reg && r0_keep_reg) begin
            // Header bookkeeping.
            if (state_next == STATE_HEADER && state_reg != STATE_HEADER) begin
                marker_offset_reg <= offset_reg;
                bulk_header_reg <= state_reg == STATE_DOLLAR;
                header_bytes_reg <= 21'd0;
                chars_reg <= 5'd0;
                negative_reg <= 1'b0;
                digits_only_reg <= 1'b1;
                zero_first_reg <= 1'b0;
                value_reg <= 34'd0;
                magnitude_order_reg <= 2'd0;
            end else if (state_reg == STATE_HEADER && state_next == STATE_HEADER) begin
                header_bytes_reg <= header_bytes_next;
                if (chars_reg != 5'd31) begin
                    chars_reg <= chars_reg + 5'd1;
                end
                if (takes_sign) begin
                    negative_reg <= 1'b1;
                end else begin
                    if (!is_digit) begin
                        digits_only_reg <= 1'b0;
                    end
                    if (digit_position == 5'd0 && digit == 4'd0) begin
                        zero_first_reg <= 1'b1;
                    end
                    if (digit_position < 5'd10) begin
                        value_reg <= value_reg * 34'd10 + {30'd0, digit};
                    end
                    if (magnitude_order_reg == 2'd0 && digit_position < 5'd19) begin
                        if (digit < min_i64_digit(digit_position)) begin
                            magnitude_order_reg <= 2'd1;
                        end else if (digit > min_i64_digit(digit_position)) begin
                            magnitude_order_reg <= 2'd2;
                        end
                    end
                end
            end
            if (state_reg == STATE_HEADER && state_next == STATE_HEADER_SKIP) begin
                header_valid_reg <= bulk_header_reg ? length_valid : count_valid;
                header_empty_reg <= count_empty;
            end
            // Request and argument bookkeeping.
            if (state_reg == STATE_HEADER_SKIP && header_valid_reg) begin
                if (bulk_header_reg) begin
                    data_left_reg <= value_reg[29:0] + 30'd2;
                end else begin
                    arguments_left_reg <= value_reg[30:0];
                    argument_count_reg <= value_reg[30:0];
                end
            end
            if (state_reg == STATE_DATA) begin
                data_left_reg <= data_left_reg - 30'd1;
                if (data_left_reg == 30'd1) begin
                    arguments_left_reg <= arguments_left_reg - 31'd1;
                end
            end
        end
    end else if (out_free) begin
        // The packet end that shared a byte with another event.
        out_valid_reg <= pending_valid_reg;
        out_data_reg <= pending_data_reg;
        pending_valid_reg <= 1'b0;
    end

    if (rst) begin
        r0_valid_reg <= 1'b0;
        out_valid_reg <= 1'b0;
        pending_valid_reg <= 1'b0;
        state_reg <= STATE_REQUEST;
        offset_reg <= 32'd0;
    end
end

assign m_axis_tdata = out_data_reg;
assign m_axis_tvalid = out_valid_reg;
assign m_axis_tlast = 1'b1;

endmodule

`resetall
