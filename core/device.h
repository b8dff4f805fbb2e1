// Where a tensor lives: the CPU or the N-th CUDA device.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace livernet {

enum class DeviceType : std::uint8_t { CPU, CUDA };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;

  static constexpr Device cpu() { return Device{DeviceType::CPU, 0}; }
  static constexpr Device cuda(int i = 0) { return Device{DeviceType::CUDA, i}; }
  constexpr bool is_cpu() const { return type == DeviceType::CPU; }
  constexpr bool is_cuda() const { return type == DeviceType::CUDA; }
  friend constexpr bool operator==(Device a, Device b) {
    return a.type == b.type && (a.type == DeviceType::CPU || a.index == b.index);
  }
  std::string str() const;  // "cpu", "cuda:0"
  // Parses "cpu", "cuda", "cuda:N"; throws Error on anything else.
  static Device parse(std::string_view s);
};

// Number of usable CUDA devices: 0 when built without CUDA or when the driver/device is missing.
int cuda_device_count();
// Why there is no usable CUDA device ("built without CUDA", or the runtime's own message); "" when there is one.
std::string cuda_unavailable_reason();
// Throws a clear Error when `d` is a CUDA device that this build or machine cannot provide.
void require_device(Device d);
// What a --device option names: "auto" (the GPU when one is usable, else the CPU), "cpu", "cuda",
// "cuda:N"; throws a clear Error when that device is not usable here.
Device resolve_device(const std::string& spec);

}  // namespace livernet
