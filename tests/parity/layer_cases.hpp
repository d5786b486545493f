#pragma once
// The layer parity suite: every layer against PyTorch's float64 fixtures (tests/fixtures/layers/, made by
// make_layer_fixtures.py), forward and every gradient, written once over the backend. A test program
// defines `parity_backends` (a std::tuple of backend policies) and includes this file:
//   tests/parity/test_layer_parity.cpp   std::tuple<cpdiff::cpu>   (the CPU tests)
//   tests/cuda/test_cuda_layer_parity.cu      std::tuple<cpdiff::gpu>   (the CUDA test program, on a device)
// Tolerance: 1e-10 relative per element (fixtures.hpp's require_close) on every backend, in double.
// Every case is tagged [parity]; the including files say `// catch-filter: [parity]` for CTest (tests/CMakeLists.txt).
#include <cstdint>
#include <ratio>
#include <string>

#include "support/parity.hpp"

namespace parity {

using cpdiff::parameter_store;
using cpdiff::rng;
namespace nn = cpdiff::nn;
namespace testing = cpdiff::testing;

// The fixture was made for this layer's sizes: each PyTorch argument the layer has as a constant must equal it
// (2-D layers save [k, k] pairs).
template <class L>
void check_args(const testing::fixture& f) {
  const auto& a = f.args();
  const auto same = [&a](const char* key, std::size_t v) {
    INFO("fixture argument " << key << " = " << a.at(key) << ", the layer's " << v);
    REQUIRE((a.at(key).is_array() ? a.at(key) == nlohmann::json{v, v} : a.at(key) == v));
  };
  if constexpr (requires { L::in_features; }) same("in_features", L::in_features), same("out_features", L::out_features);
  if constexpr (requires { L::kernel_size; }) {
    same("in_channels", L::in_channels), same("out_channels", L::out_channels), same("kernel_size", L::kernel_size);
    same("stride", L::stride), same("padding", L::padding), same("dilation", L::dilation);
  }
  if constexpr (requires { L::output_padding; }) same("output_padding", L::output_padding);
}

// A layer with weight and bias built from (store, name, rng), checked against one fixture.
template <class L, class B>
void weight_bias_case(const std::string& name) {
  const B be{};
  testing::fixture f(name);
  check_args<L>(f);
  parameter_store<double, B> ps(be);
  rng g{3};
  L layer(ps, "layer", g);
  testing::check_weight_bias_on(be, layer, ps, f, name);
}

// A parameter-free one-input layer (activations, pooling, flatten), built from the backend value.
template <class L, class B>
void free_case(const std::string& name) {
  const B be{};
  testing::fixture f(name);
  L layer(be);
  testing::check_layer_on<B>(be, layer, nullptr, f, name);
}

// Two inputs, two input gradients (concat, add).
template <class Op, class B>
void two_input_case(const std::string& name) {
  const B be{};
  testing::fixture f(name);
  Op op(be);
  const auto x0 = testing::upload(be, f.tensor("x0")), x1 = testing::upload(be, f.tensor("x1"));
  const auto dy = testing::upload(be, f.tensor("dy"));
  testing::require_close_on(be, op.forward(x0.cview(), x1.cview()), f.tensor("y").cview(), 1e-10, name + ": y");
  auto [dx0, dx1] = op.backward(dy.cview());
  testing::require_close_on(be, dx0, f.tensor("dx0").cview(), 1e-10, name + ": dx0");
  testing::require_close_on(be, dx1, f.tensor("dx1").cview(), 1e-10, name + ": dx1");
}

}  // namespace parity

TEMPLATE_LIST_TEST_CASE("parity: linear and the convolutions match PyTorch (forward, dx, dweight, dbias)",
                        "[parity][linear][conv]", parity_backends) {
  using B = TestType;
  using parity::weight_bias_case;
  namespace nn = cpdiff::nn;
  weight_bias_case<nn::linear<3, 4, double, B>, B>("linear");
  weight_bias_case<nn::linear<3, 4, double, B, false>, B>("linear_nobias");
  weight_bias_case<nn::conv1d<2, 3, 3, double, B, 1, 1, 1>, B>("conv1d_k3_s1_p1");
  weight_bias_case<nn::conv1d<2, 3, 3, double, B, 2, 0, 1>, B>("conv1d_k3_s2_p0");
  weight_bias_case<nn::conv1d<2, 3, 3, double, B, 1, 2, 2>, B>("conv1d_k3_d2_p2");
  weight_bias_case<nn::conv1d<4, 4, 5, double, B, 5, 0, 1>, B>("conv1d_k5_s5_p0");
  weight_bias_case<nn::conv_transpose1d<2, 3, 3, double, B, 1, 0, 0>, B>("conv_transpose1d_k3_s1_p0");
  weight_bias_case<nn::conv_transpose1d<2, 3, 3, double, B, 2, 1, 1>, B>("conv_transpose1d_k3_s2_p1_op1");
  weight_bias_case<nn::conv_transpose1d<4, 4, 5, double, B, 5, 0, 0>, B>("conv_transpose1d_k5_s5_p0");
  weight_bias_case<nn::conv2d<1, 4, 3, double, B, 1, 1>, B>("conv2d_k3_s1_p1");
  weight_bias_case<nn::conv2d<1, 4, 3, double, B, 2, 0>, B>("conv2d_k3_s2_p0");
}

TEMPLATE_LIST_TEST_CASE("parity: activations match PyTorch (y, dx)", "[parity][activation]", parity_backends) {
  using B = TestType;
  using parity::free_case;
  namespace nn = cpdiff::nn;
  REQUIRE(cpdiff::testing::fixture("leaky_relu_0.01").args()["negative_slope"].get<double>() ==
          nn::leaky_relu_fn<std::ratio<1, 100>>::slope<double>());
  REQUIRE(cpdiff::testing::fixture("leaky_relu_0.2").args()["negative_slope"].get<double>() ==
          nn::leaky_relu_fn<std::ratio<1, 5>>::slope<double>());
  free_case<nn::leaky_relu<std::ratio<1, 100>, double, B>, B>("leaky_relu_0.01");
  free_case<nn::leaky_relu<std::ratio<1, 5>, double, B>, B>("leaky_relu_0.2");
  free_case<nn::elu<std::ratio<1>, double, B>, B>("elu");
  free_case<nn::silu<double, B>, B>("silu");
  free_case<nn::gelu<double, B>, B>("gelu_erf");
  free_case<nn::gelu_tanh<double, B>, B>("gelu_tanh");
  free_case<nn::tanh_layer<double, B>, B>("tanh");
  free_case<nn::sigmoid<double, B>, B>("sigmoid");
}

TEMPLATE_LIST_TEST_CASE("parity: pooling, flatten, concat and add match PyTorch", "[parity][pooling][concat]",
                        parity_backends) {
  using B = TestType;
  namespace nn = cpdiff::nn;
  parity::free_case<nn::avg_pool2d<2, 2, double, B>, B>("avg_pool2d_k2_s2");
  parity::free_case<nn::global_avg_pool<double, B>, B>("adaptive_avg_pool1d_1");
  parity::free_case<nn::global_avg_pool<double, B>, B>("global_avg_pool2d");
  {
    const B be{};
    cpdiff::testing::fixture f("flatten");
    REQUIRE(f.args()["start_dim"].get<int>() == 1);
    REQUIRE(f.args()["end_dim"].get<int>() == -1);
    cpdiff::parameter_store<double, B> ps(be);
    nn::flatten<1, -1, double, B> flat(ps);
    cpdiff::testing::check_layer_on<B>(be, flat, nullptr, f, "flatten");
  }
  REQUIRE(cpdiff::testing::fixture("concat_last").args()["last_dim"].get<bool>());
  parity::two_input_case<nn::concat<1, double, B>, B>("concat_dim1");
  parity::two_input_case<nn::concat<-1, double, B>, B>("concat_last");
  parity::two_input_case<nn::add<double, B>, B>("add");
}

TEMPLATE_LIST_TEST_CASE("parity: batch_norm1d matches PyTorch in training (running statistics) and evaluation",
                        "[parity][batch_norm]", parity_backends) {
  using B = TestType;
  namespace testing = cpdiff::testing;
  const B be{};
  const bool train = GENERATE(true, false);
  const std::string name = train ? "batch_norm1d_train" : "batch_norm1d_eval";
  testing::fixture f(name);
  cpdiff::parameter_store<double, B> ps(be);
  cpdiff::rng g{1};
  cpdiff::nn::batch_norm1d<4, double, B> bn(ps, "bn", g, f.args()["eps"].get<double>(),
                                            f.args()["momentum"].get<double>());
  f.load_into(train ? "running_mean_before" : "running_mean", bn.running_mean(), be);
  f.load_into(train ? "running_var_before" : "running_var", bn.running_var(), be);
  bn.set_training(train);
  testing::check_weight_bias_on(be, bn, ps, f, name);
  // Training updates the running statistics as PyTorch does; evaluation leaves them exactly as loaded.
  const double tol = train ? 1e-10 : 0.0;
  testing::require_close_on(be, bn.running_mean(), f.tensor("running_mean").cview(), tol, name + ": running_mean");
  testing::require_close_on(be, bn.running_var(), f.tensor("running_var").cview(), tol, name + ": running_var");
}

TEMPLATE_LIST_TEST_CASE("parity: instance, group and layer norms match PyTorch", "[parity][norm]", parity_backends) {
  using B = TestType;
  namespace testing = cpdiff::testing;
  namespace nn = cpdiff::nn;
  const B be{};
  {
    testing::fixture f("instance_norm1d");
    nn::instance_norm1d<3, double, B> in(be, f.args()["eps"].get<double>());
    testing::check_layer_on<B>(be, in, nullptr, f, "instance_norm1d");
  }
  cpdiff::parameter_store<double, B> ps(be);
  cpdiff::rng g{1};
  {
    testing::fixture f("instance_norm1d_affine");
    nn::instance_norm1d<3, double, B, true> in(ps, "in", g, f.args()["eps"].get<double>());
    testing::check_weight_bias_on(be, in, ps, f, "instance_norm1d_affine");
  }
  {
    testing::fixture f("group_norm_g2_c4");
    REQUIRE(f.args()["num_groups"].get<int>() == 2);
    nn::group_norm<2, 4, double, B> gn(ps, "gn", g, f.args()["eps"].get<double>());
    testing::check_weight_bias_on(be, gn, ps, f, "group_norm_g2_c4");
  }
  {
    testing::fixture f("layer_norm_last");
    nn::layer_norm<6, double, B> ln(ps, "ln", g, f.args()["eps"].get<double>());
    testing::check_weight_bias_on(be, ln, ps, f, "layer_norm_last");
  }
}

TEMPLATE_LIST_TEST_CASE("parity: MSE and cross-entropy losses match PyTorch (loss, dx)", "[parity][loss]",
                        parity_backends) {
  using B = TestType;
  namespace testing = cpdiff::testing;
  const B be{};
  const auto close = [](double got, double want) { return std::abs(got - want) <= 1e-10 * (1 + std::abs(want)); };
  {
    testing::fixture f("mse_loss");
    REQUIRE(f.args()["reduction"] == "mean");
    const auto x = testing::upload(be, f.tensor("x")), target = testing::upload(be, f.tensor("target"));
    cpdiff::nn::mse_loss<double, B> mse(be);
    const double loss = mse.forward(x.cview(), target.cview());
    CHECK(close(loss, f.tensor("loss").data()[0]));
    testing::require_close_on(be, mse.backward(), f.tensor("dx").cview(), 1e-10, "mse_loss: dx");
  }
  {
    testing::fixture f("cross_entropy");
    REQUIRE(f.args()["reduction"] == "mean");
    REQUIRE(f.args()["label_smoothing"].get<double>() == 0.0);
    const auto x = testing::upload(be, f.tensor("x"));
    REQUIRE(x.dim(1) == f.args()["num_classes"].get<std::size_t>());
    const auto raw = cpdiff::io::load_npy<std::int64_t>(testing::fixtures_dir() + "/layers/cross_entropy/target.npy");
    cpdiff::tensor<std::int64_t, cpdiff::cpu> labels(cpdiff::shape{raw.data.size()});
    std::copy(raw.data.begin(), raw.data.end(), labels.data());
    const auto target = testing::upload(be, labels);
    cpdiff::nn::cross_entropy<double, B> ce(be);
    const double loss = ce.forward(x.cview(), target.cview());
    CHECK(close(loss, f.tensor("loss").data()[0]));
    testing::require_close_on(be, ce.backward(), f.tensor("dx").cview(), 1e-10, "cross_entropy: dx");
  }
}

namespace parity {
// A layer whose parameters carry PyTorch's names under "layer.": each one loaded from the fixture file of its name
// (without the prefix), its gradient checked against "d<name>".
template <class L, class B, class... Args>
void named_parameters_case(const std::string& name, Args&&... args) {
  const B be{};
  testing::fixture f(name);
  parameter_store<double, B> ps(be);
  rng g{3};
  L layer(ps, "layer", g, std::forward<Args>(args)...);
  std::vector<std::pair<std::string, cpdiff::param_id>> grads;
  for (std::size_t i = 0; i < ps.entries().size(); ++i) {
    const std::string torch_name = ps.entries()[i].name.substr(std::string("layer.").size());
    f.load_into(torch_name, ps.value(cpdiff::param_id{i}), be);
    grads.push_back({"d" + torch_name, cpdiff::param_id{i}});
  }
  testing::check_layer_on(be, layer, &ps, f, name, grads);
}
}  // namespace parity

TEMPLATE_LIST_TEST_CASE("parity: multi-head attention, the transformer block and the embeddings match Hugging Face's "
                        "ViTAttention, ViTLayer and ViTEmbeddings in PyTorch (y, dx, every parameter's gradient)",
                        "[parity][attention]", parity_backends) {
  using B = TestType;
  using parity::named_parameters_case;
  namespace nn = cpdiff::nn;
  namespace testing = cpdiff::testing;
  named_parameters_case<nn::multi_head_attention<8, 2, double, B>, B>("multi_head_attention_d8_h2");
  named_parameters_case<nn::multi_head_attention<6, 1, double, B>, B>("multi_head_attention_d6_h1");
  const testing::fixture f("transformer_block_d8_h2_m16");
  REQUIRE(f.args()["dim"] == 8);
  REQUIRE(f.args()["heads"] == 2);
  REQUIRE(f.args()["mlp_dim"] == 16);
  named_parameters_case<nn::transformer_block<8, 2, 16, double, B>, B>("transformer_block_d8_h2_m16",
                                                                       f.args()["eps"].get<double>());
  named_parameters_case<nn::vit_embeddings<1, 8, 4, 6, double, B>, B>("vit_embeddings_c1_i8_p4_d6");
  named_parameters_case<nn::vit_embeddings<3, 6, 2, 4, double, B>, B>("vit_embeddings_c3_i6_p2_d4");
}
