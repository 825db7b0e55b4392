#pragma once
// counter_buffer<B>: an integer count (a queue's fill count or write position, a step) kept as a
// (1) tensor on backend B, so that it is a checkpoint buffer like any other state.
#include <concepts>
#include <cstdint>

#include "tensor.hpp"

namespace ssl {

/// A count (a queue position, a step) that is also a checkpoint buffer: a (1) tensor on B holding
/// it as a float. The CPU reads the tensor itself. A device backend keeps a host copy, so that
/// reading the count never waits for the device; handing the tensor out (buffer(), from
/// collect_buffers: a checkpoint load may overwrite it) makes the next read refresh that copy once.
template <class B>
class counter_buffer {
 public:
  counter_buffer() : t_(shape{1}, 0.0f) {}
  int64_t get() const {
    if constexpr (std::same_as<B, cpu>) {
      return int64_t(t_[0]);
    } else {
      if (stale_) {
        t_.copy_to_host(&host_);
        stale_ = false;
      }
      return int64_t(host_);
    }
  }
  void set(int64_t v) {
    host_ = float(v);
    stale_ = false;
    t_.fill(float(v));
  }
  tensor<B>* buffer() {
    stale_ = true;
    return &t_;
  }

 private:
  tensor<B> t_;
  mutable float host_ = 0.0f;  // device backends only
  mutable bool stale_ = false;
};

}  // namespace ssl
