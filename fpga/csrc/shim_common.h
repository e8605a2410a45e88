// Helpers of the generated Verilator shim (see build.rs): copy port values between the words
// that Rust passes and a Verilated model's port fields, whatever type Verilator chose for the
// width (CData, SData, IData, QData or VlWide).
#ifndef EMBER_FPGA_SHIM_COMMON_H
#define EMBER_FPGA_SHIM_COMMON_H

#include <cstddef>
#include <cstdint>

#include "verilated.h"

namespace ember_shim {

template <class Port>
inline void set_port(Port& port, const uint32_t* words) {
    if (sizeof(Port) <= 4) {
        port = static_cast<Port>(words[0]);
    } else {
        port = static_cast<Port>(static_cast<uint64_t>(words[0]) | (static_cast<uint64_t>(words[1]) << 32));
    }
}

template <std::size_t Words>
inline void set_port(VlWide<Words>& port, const uint32_t* words) {
    for (std::size_t index = 0; index < Words; ++index) port[index] = words[index];
}

template <class Port>
inline void get_port(const Port& port, uint32_t* words) {
    const uint64_t value = static_cast<uint64_t>(port);
    words[0] = static_cast<uint32_t>(value);
    if (sizeof(Port) > 4) words[1] = static_cast<uint32_t>(value >> 32);
}

template <std::size_t Words>
inline void get_port(const VlWide<Words>& port, uint32_t* words) {
    for (std::size_t index = 0; index < Words; ++index) words[index] = port[index];
}

}  // namespace ember_shim

#endif
