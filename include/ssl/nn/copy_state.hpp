#pragma once
// copy_state(src, dst): dst's parameter values and buffers (BN running statistics) become src's,
// for two modules of the same architecture on any two backends. Parameters and buffers are
// matched by their collect() names, in order; every name and shape must agree. Typical use:
// train on the GPU, evaluate on the CPU:
//   convnet_s<cpu> host(1);  copy_state(method.encoder(), host);   // method on cuda
// Gradients and optimizer state are not copied.
#include <string>
#include <utility>
#include <vector>

#include "module.hpp"

namespace ssl {

namespace detail {
/// dst = src elementwise across backends (shapes already checked).
template <class SB, class DB>
void copy_across(const tensor<SB>& src, tensor<DB>& dst) {
  if constexpr (std::same_as<SB, cpu>)
    dst.copy_from_host(src.data());
  else if constexpr (std::same_as<DB, cpu>)
    src.copy_to_host(dst.data());
  else
    tensor<DB>::copy_elements(src.data(), dst.data(), src.numel());
}

template <class SB, class DB>
void copy_named(const std::vector<std::pair<std::string, const tensor<SB>*>>& src,
                const std::vector<std::pair<std::string, tensor<DB>*>>& dst, const char* what) {
  check<value_error>(src.size() == dst.size(), "copy_state: the source has ", src.size(), " ", what,
                     ", the destination ", dst.size());
  for (size_t i = 0; i < src.size(); ++i) {
    check<value_error>(src[i].first == dst[i].first, "copy_state: ", what, " ", i, " is '", src[i].first,
                       "' in the source but '", dst[i].first, "' in the destination");
    check<shape_error>(src[i].second->shape() == dst[i].second->shape(), "copy_state: '", src[i].first,
                       "' has shape ", src[i].second->shape(), " in the source but ", dst[i].second->shape(),
                       " in the destination");
  }
  for (size_t i = 0; i < src.size(); ++i) copy_across(*src[i].second, *dst[i].second);
}
}  // namespace detail

template <class Src, class Dst>
void copy_state(Src& src, Dst& dst) {
  using SB = typename Src::backend_type;
  using DB = typename Dst::backend_type;
  param_list<SB> sp;
  param_list<DB> dp;
  src.collect(sp, "");
  dst.collect(dp, "");
  std::vector<std::pair<std::string, const tensor<SB>*>> sv;
  std::vector<std::pair<std::string, tensor<DB>*>> dv;
  for (const auto& r : sp) sv.emplace_back(r.name, &r.p->value);
  for (const auto& r : dp) dv.emplace_back(r.name, &r.p->value);
  detail::copy_named(sv, dv, "parameters");
  std::vector<std::pair<std::string, tensor<SB>*>> sb;
  std::vector<std::pair<std::string, tensor<DB>*>> db;
  if constexpr (requires { src.collect_buffers(sb, std::string{}); }) src.collect_buffers(sb, "");
  if constexpr (requires { dst.collect_buffers(db, std::string{}); }) dst.collect_buffers(db, "");
  std::vector<std::pair<std::string, const tensor<SB>*>> sbc(sb.begin(), sb.end());
  detail::copy_named(sbc, db, "buffers");
}

}  // namespace ssl
