// Element-wise activations for Ember's native CUDA path. Bias and ReLU are fused into the
// cuBLASLt epilogues; only the final sigmoid, which cuBLASLt has no epilogue for, runs here.
//
// Launch: any 1-D grid; a grid-stride loop covers all `count` elements.
extern "C" __global__ void sigmoid_f32(float* __restrict__ values, unsigned int count)
{
    for (unsigned int i = blockIdx.x * blockDim.x + threadIdx.x; i < count;
         i += blockDim.x * gridDim.x) {
        values[i] = 1.0f / (1.0f + expf(-values[i]));
    }
}
