// Tensor shapes: up to kMaxDims extents, stored inline.
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <vector>

#include "core/error.h"

namespace livernet {

class Shape {
 public:
  static constexpr int kMaxDims = 8;

  Shape() = default;
  Shape(std::initializer_list<std::int64_t> dims) { assign(dims.begin(), dims.end()); }
  explicit Shape(std::span<const std::int64_t> dims) { assign(dims.begin(), dims.end()); }
  explicit Shape(const std::vector<std::int64_t>& dims) { assign(dims.begin(), dims.end()); }

  int size() const { return n_; }
  bool empty() const { return n_ == 0; }
  std::int64_t operator[](int i) const { return d_[i]; }
  std::int64_t& operator[](int i) { return d_[i]; }
  // Extent of dimension i; negative i counts from the end.
  std::int64_t at(int i) const {
    const int j = i < 0 ? i + n_ : i;
    LN_CHECK(j >= 0 && j < n_, "dimension ", i, " out of range for shape ", str());
    return d_[j];
  }
  const std::int64_t* begin() const { return d_; }
  const std::int64_t* end() const { return d_ + n_; }
  std::int64_t back() const { return d_[n_ - 1]; }

  void push_back(std::int64_t v) {
    LN_CHECK(n_ < kMaxDims, "shape ", str(), " cannot have more than ", kMaxDims, " dimensions");
    d_[n_++] = v;
  }
  std::int64_t numel() const {
    std::int64_t n = 1;
    for (int i = 0; i < n_; ++i) n *= d_[i];
    return n;
  }
  std::vector<std::int64_t> vec() const { return std::vector<std::int64_t>(begin(), end()); }
  std::string str() const {
    std::string s = "[";
    for (int i = 0; i < n_; ++i) {
      if (i) s += ", ";
      s += std::to_string(d_[i]);
    }
    return s + "]";
  }
  friend bool operator==(const Shape& a, const Shape& b) {
    return a.n_ == b.n_ && std::equal(a.begin(), a.end(), b.begin());
  }

 private:
  template <typename It>
  void assign(It first, It last) {
    n_ = 0;
    for (; first != last; ++first) {
      LN_CHECK(*first >= 0, "negative extent ", *first, " in a shape");
      push_back(*first);
    }
  }
  std::int64_t d_[kMaxDims] = {};
  int n_ = 0;
};

}  // namespace livernet
