#pragma once
// The backend parity suite's two helpers, for any backend B (cpu or gpu): PyTorch fixtures moved onto B, and
// one comparison of a result on B against the fixture (fixtures.hpp's require_close after a copy to the host).
//   testing::fixture f("conv1d_k3_s1_p1");
//   auto x = testing::upload(be, f.tensor("x"));            // tensor<double, B>
//   f.load_into("weight", conv.weight(), be);                // a parameter view on B
//   testing::require_close_on(be, conv.forward(x.cview()), f.tensor("y").cview(), 1e-10, "y");
#include <span>
#include <string>
#include <vector>

#include "support/fixtures.hpp"

namespace cpdiff::testing {

template <class B, class T>
cpdiff::tensor<T, B> upload(const B& be, const cpdiff::tensor<T, cpu>& host) {
  cpdiff::tensor<T, B> out(host.shape());
  from_host(be, std::span<const T>(host.data(), host.size()), out.view());
  return out;
}

// got (a view on B) against the fixture's tensor: same shape, then require_close on the host copy.
template <class B, class V>
void require_close_on(const B& be, V got, const_view<double> want, double tol, const std::string& what) {
  INFO(what << ": got shape " << got.shape() << ", PyTorch's " << want.shape());
  REQUIRE(got.shape() == want.shape());
  const std::vector<double> host = to_host(be, tensor_view<const double, typename V::memory_space>(got));
  require_close(const_view<double>(host.data(), got.shape()), want, tol, what);
}

// The whole check of a layer that has one input: y = forward(x), then with the store's gradients zeroed,
// dx = backward(dy) and each listed parameter gradient ("dweight" against ps.grad(weight_id)...), all to tol.
template <class B, class L>
void check_layer_on(const B& be, L& layer, parameter_store<double, B>* ps, const fixture& f, const std::string& name,
                    std::vector<std::pair<std::string, param_id>> grads = {}, double tol = 1e-10) {
  INFO("fixture " << name);
  const auto x = upload(be, f.tensor("x")), dy = upload(be, f.tensor("dy"));
  require_close_on(be, layer.forward(x.cview()), f.tensor("y").cview(), tol, name + ": y");
  if (ps) fill(be, ps->grads(), 0.0);
  require_close_on(be, layer.backward(dy.cview()), f.tensor("dx").cview(), tol, name + ": dx");
  for (const auto& [t, id] : grads) require_close_on(be, ps->grad(id), f.tensor(t).cview(), tol, name + ": " + t);
}

// A layer with "weight" and "bias" (linear, convolutions, affine norms): both loaded, then check_layer_on.
template <class B, class L>
void check_weight_bias_on(const B& be, L& layer, parameter_store<double, B>& ps, const fixture& f,
                          const std::string& name, double tol = 1e-10) {
  f.load_into("weight", layer.weight(), be);
  std::vector<std::pair<std::string, param_id>> grads{{"dweight", layer.weight_id()}};
  if constexpr (requires { layer.bias_id(); }) {
    if (f.has("bias")) {
      f.load_into("bias", layer.bias(), be);
      grads.push_back({"dbias", layer.bias_id()});
    }
  }
  check_layer_on(be, layer, &ps, f, name, grads, tol);
}

}  // namespace cpdiff::testing
