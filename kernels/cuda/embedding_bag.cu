// Embedding-bag gather and pooling for Ember's native CUDA DLRM path.
//
// out[bag, c] = sum over j in [offsets[bag], offsets[bag + 1]) of table[indices[j], c], divided by
// the bag's length when `mean` is non-zero (an empty bag pools to zeros). The rows of every
// embedding table live in one concatenated `table`; the host turns (feature, id) into a row index
// and checks it against `table_row_count` before launch, so the bound check here only keeps a
// corrupted index from reading outside the allocation (it then contributes nothing).
//
// Launch: blockDim = (dim, bags_per_block), gridDim.x = ceil(bag_count / bags_per_block). One
// thread owns one column of one bag, so a warp reads consecutive floats of a row (coalesced).
// The rows of a bag are added in index order, as the CPU reference does.
extern "C" __global__ void embedding_bag_f32(
    const float* __restrict__ table,
    unsigned long long table_row_count,
    const unsigned int* __restrict__ indices,
    const unsigned int* __restrict__ offsets,
    unsigned int bag_count,
    unsigned int dim,
    int mean,
    float* __restrict__ out)
{
    const unsigned int column = threadIdx.x;
    const unsigned int bag = blockIdx.x * blockDim.y + threadIdx.y;
    if (bag >= bag_count || column >= dim) {
        return;
    }
    const unsigned int begin = offsets[bag];
    const unsigned int end = offsets[bag + 1];
    float sum = 0.0f;
    for (unsigned int j = begin; j < end; ++j) {
        const unsigned long long row = indices[j];
        if (row < table_row_count) {
            sum += table[row * dim + column];
        }
    }
    if (mean != 0 && end > begin) {
        sum = sum / (float)(end - begin);
    }
    out[(unsigned long long)bag * dim + column] = sum;
}
