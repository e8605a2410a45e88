# Sourced by ci/run.sh: `make run` serves the demo recommendation models and loads their embedding tables, so
# RECOMMEND works from redis-cli at once (README, "Recommendations").
args+=(
    --ort-lib .deps/onnxruntime/libonnxruntime.so
    --model dlrm_dense=models/dlrm_dense.onnx
    --model dlrm=models/dlrm.onnx
    --demo-embeddings models
)
