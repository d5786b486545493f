#pragma once
// PyTorch reference fixtures (tests/fixtures/layers/<case>/, made by tests/fixtures/make_layer_fixtures.py).
//   testing::fixture f("conv1d_k3_s1_p1");
//   auto x = f.tensor("x");            // tensor<double, cpu> with the saved shape
//   int k = f.args()["kernel_size"];   // the case's constructor arguments (case.json)
//   testing::require_close(y, f.tensor("y"), 1e-10, "y");
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <span>
#include <nlohmann/json.hpp>
#include <string>

#include "cpdiff/cpdiff.hpp"
#include "cpdiff/io/npy.hpp"

namespace cpdiff::testing {

inline std::string fixtures_dir() { return CPDIFF_FIXTURES_DIR; }

class fixture {
 public:
  explicit fixture(std::string name) : dir_(fixtures_dir() + "/layers/" + name) {
    std::ifstream in(dir_ + "/case.json");
    if (!in) FAIL("missing fixture " << dir_ << "/case.json: run /usr/bin/python3 tests/fixtures/make_layer_fixtures.py");
    json_ = nlohmann::json::parse(in);
  }
  const nlohmann::json& args() const { return json_.at("args"); }
  const nlohmann::json& json() const { return json_; }
  bool has(const std::string& t) const { return json_.at("tensors").contains(t); }

  cpdiff::tensor<double, cpu> tensor(const std::string& t) const {
    auto a = io::load_npy<double>(dir_ + "/" + t + ".npy");
    cpdiff::tensor<double, cpu> out(shape::from_range(a.shape.begin(), a.shape.end()));
    std::copy(a.data.begin(), a.data.end(), out.data());
    return out;
  }
  // Copies a saved tensor into an existing view (a parameter) on backend B, checking the element count.
  template <class V, class B = cpu>
  void load_into(const std::string& t, V v, const B& be = {}) const {
    const auto host = tensor(t);
    REQUIRE(host.size() == v.size());
    from_host(be, std::span<const double>(host.data(), host.size()), v);
  }

 private:
  std::string dir_;
  nlohmann::json json_;
};

// Element-wise |a - b| <= tol * (1 + |b|), shapes equal; reports the worst element.
inline void require_close(const_view<double> a, const_view<double> b, double tol, const std::string& what) {
  INFO(what << ": got shape " << a.shape() << ", expected " << b.shape());
  REQUIRE(a.size() == b.size());
  double worst = 0;
  std::size_t at = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double e = std::abs(a.data()[i] - b.data()[i]) / (1 + std::abs(b.data()[i]));
    if (!(e <= worst)) worst = e, at = i;  // NaN counts as worst
  }
  INFO(what << ": worst relative error " << worst << " at element " << at);
  CHECK(worst <= tol);
}

}  // namespace cpdiff::testing
