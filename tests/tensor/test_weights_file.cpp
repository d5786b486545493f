// save_weights / load_weights (tensor/weights_file.hpp) and parameter_summary.
#include <filesystem>
#include <limits>
#include <vector>

#include "cpdiff/cpdiff.hpp"
#include "support/gradcheck.hpp"

using namespace cpdiff;

namespace {
std::filesystem::path temp_file(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("cpdiff_test_weights_" + name + ".safetensors");
}
}  // namespace

TEST_CASE("weights: an autoencoder's weights round-trip exactly, running statistics included", "[tensor][weights]") {
  models::style_autoencoder<models::style_small> a(200, 1), b(200, 2);
  const auto path = temp_file("roundtrip");
  save_weights(path, a);
  load_weights(path, b);
  const auto& pa = std::as_const(a.parameters());
  const auto& pb = std::as_const(b.parameters());
  REQUIRE(pa.size() == pb.size());
  for (std::size_t i = 0; i < pa.size(); ++i) REQUIRE(pa.values().data()[i] == pb.values().data()[i]);
  std::filesystem::remove(path);
}

TEST_CASE("weights: another configuration, other names or shapes are refused and nothing changes",
          "[tensor][weights]") {
  const auto path = temp_file("refuse");
  models::pdiff_autoencoder<models::pdiff_small> a(300, 1);
  save_weights(path, a);
  SECTION("same architecture, another vector length: the parameter shapes agree, the configuration does not") {
    models::pdiff_autoencoder<models::pdiff_small> other_n(400, 1);
    const std::vector<float> before(std::as_const(other_n.parameters()).values().data(),
                                    std::as_const(other_n.parameters()).values().data() + other_n.parameters().size());
    REQUIRE_THROWS_AS(load_weights(path, other_n), io_error);
    REQUIRE_THROWS_WITH(load_weights(path, other_n), Catch::Contains("\"n_params\": 300") &&
                                                         Catch::Contains("\"n_params\": 400"));
    for (std::size_t i = 0; i < before.size(); ++i)
      REQUIRE(std::as_const(other_n.parameters()).values().data()[i] == before[i]);
  }
  SECTION("a store with other names") {
    parameter_store<float, cpu> ps;
    rng g{1};
    nn::linear<3, 4> fc(ps, "fc", g);
    REQUIRE_THROWS_AS(load_weights(path, ps, a.describe()), io_error);
    REQUIRE_THROWS_WITH(load_weights(path, ps, a.describe()), Catch::Contains("missing fc.bias, fc.weight"));
  }
  SECTION("same names, another shape") {
    const auto p2 = temp_file("shape");
    parameter_store<float, cpu> p3, p4;
    rng g{1};
    nn::linear<3, 4> fc3(p3, "fc", g);
    nn::linear<3, 5> fc4(p4, "fc", g);
    save_weights(p2, p3);
    REQUIRE_THROWS_AS(load_weights(p2, p4), shape_error);
    REQUIRE_THROWS_WITH(load_weights(p2, p4), Catch::Contains("fc.weight") && Catch::Contains("[4, 3]") &&
                                                 Catch::Contains("[5, 3]"));
    std::filesystem::remove(p2);
  }
  SECTION("a trainer checkpoint is not a weights file") {
    const auto p5 = temp_file("not_weights");
    io::safetensors_writer w;
    w.set_metadata("format", "something else");
    w.add("x", std::vector<std::size_t>{1}, std::vector<float>{1.f});
    w.save(p5);
    REQUIRE_THROWS_WITH(load_weights(p5, a), Catch::Contains("not a cpdiff weights file"));
    std::filesystem::remove(p5);
  }
  std::filesystem::remove(path);
}

TEST_CASE("weights: a tensor of another dtype or a NaN or infinite value is refused and nothing changes",
          "[tensor][weights]") {
  // tests/fuzz/regress/weights/: a float file loaded into a double model (once rounded up silently), a NaN weight.
  const auto path = temp_file("dtype");
  models::style_autoencoder<models::style_small> a(40, 1, {.linear_skip = true});
  models::style_autoencoder<models::style_small, double> d(40, 2, {.linear_skip = true});
  save_weights(path, a);
  const auto& pd = std::as_const(d.parameters());
  const std::vector<double> before(pd.values().data(), pd.values().data() + pd.size());
  REQUIRE_THROWS_AS(load_weights(path, d), io_error);
  REQUIRE_THROWS_WITH(load_weights(path, d), Catch::Contains("is F32, the model's dtype is F64"));
  for (std::size_t i = 0; i < before.size(); ++i) REQUIRE(pd.values().data()[i] == before[i]);

  const auto p2 = temp_file("not_finite");
  parameter_store<float, cpu> p, q;
  rng g{1};
  nn::linear<3, 4> fp(p, "fc", g), fq(q, "fc", g);
  p.value(p.find("fc.bias")).data()[1] = std::numeric_limits<float>::infinity();
  save_weights(p2, p);
  const float kept = std::as_const(q).value(q.find("fc.weight")).data()[0];
  REQUIRE_THROWS_AS(load_weights(p2, q), io_error);
  REQUIRE_THROWS_WITH(load_weights(p2, q), Catch::Contains("tensor 'fc.bias' holds inf at index 1"));
  REQUIRE(std::as_const(q).value(q.find("fc.weight")).data()[0] == kept);
  p.value(p.find("fc.bias")).data()[1] = std::numeric_limits<float>::quiet_NaN();
  save_weights(p2, p);
  REQUIRE_THROWS_WITH(load_weights(p2, q), Catch::Contains("tensor 'fc.bias' holds nan at index 1"));
  std::filesystem::remove(path);
  std::filesystem::remove(p2);
}

TEST_CASE("weights: an autoencoder trainer's checkpoint is refused by a trainer of another vector length",
          "[tensor][weights][train]") {
  const auto path = temp_file("ae_checkpoint");
  std::vector<float> d300(8 * 300, 0.1f), d400(8 * 400, 0.1f);
  models::pdiff_autoencoder<models::pdiff_small> a(300, 1), b(400, 1);
  train::autoencoder_trainer ta(a, const_view<float>(d300.data(), {8, 300}), {.steps = 2, .batch_size = 4});
  ta.run();
  ta.save_checkpoint(path);
  train::autoencoder_trainer tb(b, const_view<float>(d400.data(), {8, 400}), {.steps = 2, .batch_size = 4});
  REQUIRE_THROWS_AS(tb.resume(path), io_error);
  REQUIRE_THROWS_WITH(tb.resume(path), Catch::Contains("\"n_params\": 300") && Catch::Contains("\"n_params\": 400"));
  std::filesystem::remove(path);
}

TEST_CASE("parameter_summary: counts per module and in total, frozen entries apart", "[tensor][summary]") {
  parameter_store<float, cpu> ps;
  rng g{1};
  nn::linear<3, 4> a(ps, "enc.fc", g);
  nn::batch_norm1d<4> bn(ps, "enc.bn", g);
  nn::linear<4, 2> b(ps, "head", g);
  const std::string s = parameter_summary(ps);
  // enc: 12 + 4 (linear) + 4 + 4 (bn affine) + 4 + 4 (running stats, frozen) = 32, 24 trainable; head 10.
  CHECK_THAT(s, Catch::Contains("enc") && Catch::Contains("32") && Catch::Contains("24"));
  CHECK_THAT(s, Catch::Contains("head") && Catch::Contains("10"));
  CHECK_THAT(s, Catch::Contains("total") && Catch::Contains("42") && Catch::Contains("34"));
}
