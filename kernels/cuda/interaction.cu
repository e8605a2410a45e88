// DLRM dot interaction for Ember's native CUDA path.
//
// Per sample b, the vectors are T[0] = bottom[b] (the bottom MLP's output) and
// T[1 + f] = pooled[b, f] for the F pooled embeddings, each of `dim` floats. The output row is
// [ T[0] (dim floats), T[i] . T[j] for i in 1..=F, j in 0..i ] of dim + F * (F + 1) / 2 floats:
// the strict lower triangle in DLRM's order (row by row), which is the top MLP's input.
//
// Launch: one block per sample, any blockDim.x, dynamic shared memory of
// (F + 1) * (dim + 1) floats. Rows are staged with a stride of dim + 1 so that the threads of a
// warp, which read the same column of different rows, hit different shared-memory banks.
// Each dot product adds its terms in column order, as the CPU reference does.
extern "C" __global__ void dot_interaction_f32(
    const float* __restrict__ bottom,
    const float* __restrict__ pooled,
    unsigned int sample_count,
    unsigned int feature_count,
    unsigned int dim,
    float* __restrict__ out)
{
    extern __shared__ float tile[];
    const unsigned int sample = blockIdx.x;
    if (sample >= sample_count) {
        return;
    }
    const unsigned int vector_count = feature_count + 1;
    const unsigned int stride = dim + 1;
    const unsigned int pair_count = vector_count * (vector_count - 1) / 2;
    const unsigned int out_width = dim + pair_count;
    const float* bottom_row = bottom + (unsigned long long)sample * dim;
    const float* pooled_rows = pooled + (unsigned long long)sample * feature_count * dim;
    float* out_row = out + (unsigned long long)sample * out_width;

    for (unsigned int c = threadIdx.x; c < dim; c += blockDim.x) {
        const float value = bottom_row[c];
        tile[c] = value;
        out_row[c] = value;
    }
    for (unsigned int e = threadIdx.x; e < feature_count * dim; e += blockDim.x) {
        const unsigned int row = e / dim;
        const unsigned int c = e - row * dim;
        tile[(row + 1) * stride + c] = pooled_rows[e];
    }
    __syncthreads();

    for (unsigned int p = threadIdx.x; p < pair_count; p += blockDim.x) {
        // Pair p lies in row i where i * (i - 1) / 2 <= p < i * (i + 1) / 2. The square root
        // gives a first guess; the two loops make it exact whatever the rounding.
        unsigned int i = (unsigned int)((1.0f + sqrtf(1.0f + 8.0f * (float)p)) * 0.5f);
        while (i * (i - 1) / 2 > p) {
            --i;
        }
        while ((i + 1) * i / 2 <= p) {
            ++i;
        }
        const unsigned int j = p - i * (i - 1) / 2;
        const float* a = tile + i * stride;
        const float* b = tile + j * stride;
        float sum = 0.0f;
        for (unsigned int c = 0; c < dim; ++c) {
            sum += a[c] * b[c];
        }
        out_row[dim + p] = sum;
    }
}
