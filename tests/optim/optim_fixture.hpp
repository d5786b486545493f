#pragma once
// PyTorch reference cases for the optimiser tests (tests/fixtures/optim/<case>/, made by
// tests/fixtures/make_optim_fixtures.py; see tests/fixtures/README.md).
//   testing::optim_fixture f("adamw_default");
//   parameter_store<double, cpu> ps;
//   f.build_store(ps);                       // entries a, b, frozen, c with params0 loaded
//   auto traj = f.array("params");           // flat data; f.shape("params") gives [S, N]
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/io/npy.hpp"
#include "cpdiff/tensor/parameter_store.hpp"

namespace cpdiff::testing {

class optim_fixture {
 public:
  explicit optim_fixture(std::string name) : dir_(std::string(CPDIFF_FIXTURES_DIR) + "/optim/" + name) {
    std::ifstream in(dir_ + "/case.json");
    if (!in) FAIL("missing fixture " << dir_ << "/case.json: run /usr/bin/python3 tests/fixtures/make_optim_fixtures.py");
    json_ = nlohmann::json::parse(in);
  }
  const nlohmann::json& args() const { return json_.at("args"); }

  std::vector<double> array(const std::string& a) const { return io::load_npy<double>(dir_ + "/" + a + ".npy").data; }
  std::vector<std::size_t> shape(const std::string& a) const {
    return io::load_npy<double>(dir_ + "/" + a + ".npy").shape;
  }

  // Registers the case's layout in an empty store and loads params0 into it (when the case has one).
  void build_store(parameter_store<double, cpu>& ps) const {
    REQUIRE(ps.count() == 0);
    for (const auto& e : json_.at("layout")) {
      auto dims = e.at("shape").get<std::vector<std::size_t>>();
      ps.add(e.at("name").get<std::string>(), cpdiff::shape::from_range(dims.begin(), dims.end()),
             e.at("trainable").get<bool>());
    }
    if (!json_.at("arrays").contains("params0")) return;  // clip cases: values stay zero
    const auto p0 = array("params0");
    REQUIRE(p0.size() == ps.size());
    std::copy(p0.begin(), p0.end(), ps.values().data());
  }

 private:
  std::string dir_;
  nlohmann::json json_;
};

// Element-wise |a - b| <= tol * (1 + |b|); reports the worst element.
inline void require_close(std::span<const double> a, std::span<const double> b, double tol, const std::string& what) {
  INFO(what);
  REQUIRE(a.size() == b.size());
  double worst = 0;
  std::size_t at = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double e = std::abs(a[i] - b[i]) / (1 + std::abs(b[i]));
    if (!(e <= worst)) worst = e, at = i;  // NaN counts as worst
  }
  INFO(what << ": worst relative error " << worst << " at element " << at << " (got " << a[at] << ", expected "
            << b[at] << ")");
  CHECK(worst <= tol);
}

// Row s of a [rows, n] array.
inline std::span<const double> row(const std::vector<double>& a, std::size_t s, std::size_t n) {
  return std::span<const double>(a).subspan(s * n, n);
}

}  // namespace cpdiff::testing
