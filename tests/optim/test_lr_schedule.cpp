#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/optim/lr_schedule.hpp"
#include "optim/optim_fixture.hpp"

using namespace cpdiff;

namespace {

optim::reduce_lr_on_plateau plateau_of(const nlohmann::json& a) {
  optim::reduce_lr_on_plateau p;
  p.lr = a.at("lr");
  p.factor = a.at("factor");
  p.patience = a.at("patience");
  p.threshold = a.at("threshold");
  p.threshold_kind = a.at("threshold_mode") == "rel" ? optim::threshold_mode::rel : optim::threshold_mode::abs;
  p.mode = a.at("mode") == "min" ? optim::plateau_mode::min : optim::plateau_mode::max;
  p.cooldown = a.at("cooldown");
  p.min_lr = a.at("min_lr");
  p.eps = a.at("eps");
  return p;
}

}  // namespace

TEST_CASE("cosine_warmup_lr: matches CosineAnnealingLR (with LinearLR warm-up)", "[optim][lr_schedule]") {
  for (const char* name : {"cosine", "cosine_warmup"}) {
    DYNAMIC_SECTION(name) {
      testing::optim_fixture f(name);
      const auto& a = f.args();
      const optim::cosine_warmup_lr sched{.base_lr = a.at("base_lr"), .total_steps = a.at("total_steps"),
                                          .warmup_steps = a.at("warmup_steps"), .eta_min = a.at("eta_min")};
      const auto want = f.array("lr");
      std::vector<double> got;
      for (std::size_t s = 0; s < want.size(); ++s) got.push_back(sched.lr(s));
      testing::require_close(got, want, 1e-12, std::string(name) + " rates");
      // past total_steps the rate stays at eta_min
      CHECK(sched.lr(sched.total_steps + 1) == sched.eta_min);
      CHECK(sched.lr(10 * sched.total_steps) == sched.eta_min);
    }
  }
}

TEST_CASE("cosine_warmup_lr: shape by hand", "[optim][lr_schedule]") {
  const optim::cosine_warmup_lr s{.base_lr = 1.0, .total_steps = 14, .warmup_steps = 4, .eta_min = 0.0};
  CHECK(s.lr(0) == Approx(0.25));
  CHECK(s.lr(3) == Approx(1.0));
  CHECK(s.lr(4) == Approx(1.0));
  CHECK(s.lr(9) == Approx(0.5));  // halfway through the cosine
  CHECK(s.lr(14) == Approx(0.0).margin(1e-15));
  for (std::size_t k = 4; k < 14; ++k) CHECK(s.lr(k + 1) < s.lr(k));
}

TEST_CASE("constant_lr", "[optim][lr_schedule]") {
  const optim::constant_lr c{.base_lr = 3e-4};
  CHECK(c.lr(0) == 3e-4);
  CHECK(c.lr(123456) == 3e-4);
}

TEST_CASE("reduce_lr_on_plateau: matches torch ReduceLROnPlateau", "[optim][lr_schedule]") {
  for (const char* name : {"plateau_min_rel", "plateau_max_abs"}) {
    DYNAMIC_SECTION(name) {
      testing::optim_fixture f(name);
      auto p = plateau_of(f.args());
      const auto metric = f.array("metric"), want = f.array("lr");
      std::vector<double> got;
      for (double m : metric) got.push_back(p.step(m));
      testing::require_close(got, want, 1e-12, std::string(name) + " rates");
      CHECK(p.lr == got.back());
      CHECK(p.last_epoch == metric.size());
    }
  }
}

TEST_CASE("reduce_lr_on_plateau: copying the value mid-run resumes identically", "[optim][lr_schedule]") {
  testing::optim_fixture f("plateau_min_rel");
  auto p = plateau_of(f.args());
  const auto metric = f.array("metric"), want = f.array("lr");
  for (std::size_t k = 0; k < 7; ++k) p.step(metric[k]);
  // a checkpoint stores the plain members; restore them into a fresh object
  optim::reduce_lr_on_plateau q = plateau_of(f.args());
  q.lr = p.lr, q.best = p.best, q.num_bad_epochs = p.num_bad_epochs, q.cooldown_counter = p.cooldown_counter,
  q.last_epoch = p.last_epoch;
  for (std::size_t k = 7; k < metric.size(); ++k) CHECK(q.step(metric[k]) == want[k]);
}

TEST_CASE("lr schedules: bad configuration is a config_error naming the field", "[optim][lr_schedule]") {
  CHECK_THROWS_WITH((optim::cosine_warmup_lr{.base_lr = -1, .total_steps = 10}.lr(0)),
                    Catch::Contains("cosine_warmup_lr") && Catch::Contains("base_lr"));
  CHECK_THROWS_WITH((optim::cosine_warmup_lr{.base_lr = 1, .total_steps = 5, .warmup_steps = 5}.lr(0)),
                    Catch::Contains("warmup_steps"));
  CHECK_THROWS_WITH((optim::cosine_warmup_lr{.base_lr = 1, .total_steps = 5, .eta_min = -1}.lr(0)),
                    Catch::Contains("eta_min"));
  CHECK_THROWS_AS((optim::constant_lr{.base_lr = std::numeric_limits<double>::infinity()}.lr(0)), config_error);
  optim::reduce_lr_on_plateau p;
  p.factor = 1.0;
  CHECK_THROWS_WITH(p.step(1.0), Catch::Contains("reduce_lr_on_plateau") && Catch::Contains("factor"));
  p.factor = 0.5;
  p.lr = -1;
  CHECK_THROWS_WITH(p.step(1.0), Catch::Contains("lr"));
  p.lr = 1;
  p.min_lr = -1;
  CHECK_THROWS_WITH(p.step(1.0), Catch::Contains("min_lr"));
}
