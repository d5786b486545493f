#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/io/atomic_file.hpp"
#include "cpdiff/report/json_report.hpp"
#include "io/io_test_util.hpp"

namespace rp = cpdiff::report;
using nlohmann::json;

namespace {

rp::condition_result rte() {
  rp::condition_result r;
  r.experiment = "glue_roberta_r1";
  r.condition = "RTE";
  r.seen = true;
  r.base_acc = 52.7;
  r.trained = rp::summarize(std::vector<double>{68.6, 67.0, 66.2});
  r.generated = rp::summarize(std::vector<double>{66.1, 64.0, 65.0, 60.0});
  return r;
}

}  // namespace

TEST_CASE("to_json writes the report fields in percent", "[report][json]") {
  const json j = rp::to_json(rte());
  CHECK(j.at("experiment") == "glue_roberta_r1");
  CHECK(j.at("condition") == "RTE");
  CHECK(j.at("seen") == true);
  CHECK(j.at("base_acc").get<double>() == Approx(52.7));
  CHECK(j.at("trained_best").get<double>() == Approx(68.6));
  CHECK(j.at("trained_mean").get<double>() == Approx((68.6 + 67.0 + 66.2) / 3));
  CHECK(j.at("generated_best").get<double>() == Approx(66.1));
  CHECK(j.at("generated_mean").get<double>() == Approx(63.775));
  CHECK(j.at("generated_median").get<double>() == Approx(64.5));
  CHECK(j.at("n_trained") == 3);
  CHECK(j.at("n_generated") == 4);
  CHECK(j.at("control_mean").is_null());  // not measured
  rp::condition_result c = rte();
  c.control_mean = 31.25;
  CHECK(rp::to_json(c).at("control_mean").get<double>() == 31.25);
  for (const char* key : {"condition", "seen", "base_acc", "trained_best", "trained_mean", "generated_best",
                          "generated_mean", "generated_median"})
    CHECK(j.contains(key));
}

TEST_CASE("an unseen condition without trained LoRAs or base score writes null", "[report][json]") {
  rp::condition_result r = rte();
  r.condition = "l=0.050";
  r.seen = false;
  r.base_acc.reset();
  r.trained.reset();
  const json j = rp::to_json(r);
  CHECK(j.at("seen") == false);
  CHECK(j.at("base_acc").is_null());
  CHECK(j.at("trained_best").is_null());
  CHECK(j.at("trained_mean").is_null());
  CHECK(j.at("n_trained") == 0);
  r.generated = {};
  CHECK_THROWS_AS(rp::to_json(r), cpdiff::config_error);
}

TEST_CASE("write_report_json writes a document that parses back", "[report][json]") {
  cpdiff_io_test::temp_dir d;
  rp::condition_result b = rte();
  b.condition = "MRPC";
  rp::write_report_json(d / "report.json", {rte(), b}, json{{"seed", 0}, {"steps", 1000}});
  const json doc = json::parse(cpdiff::io::read_file_text(d / "report.json"));
  CHECK(doc.at("meta").at("steps") == 1000);
  REQUIRE(doc.at("entries").size() == 2);
  CHECK(doc.at("entries")[1].at("condition") == "MRPC");
  CHECK(doc.at("entries")[0] == rp::to_json(rte()));
  CHECK(d.entries() == std::vector<std::string>{"report.json"});
  CHECK_THROWS_AS(rp::report_json({rte()}, json::array()), cpdiff::config_error);
  CHECK_FALSE(rp::report_json({rte()}, nullptr).contains("meta"));
}

TEST_CASE("markdown_table pads, aligns and escapes", "[report][json]") {
  const std::string t = rp::markdown_table({"task", "acc"}, {{"RTE", "68.6"}, {"a|b", "5.0"}}, {false, true});
  const std::string expected =
      "| task |  acc |\n"
      "| ---- | ---: |\n"
      "| RTE  | 68.6 |\n"
      "| a\\|b |  5.0 |\n";
  CHECK(t == expected);
  CHECK_THROWS_AS(rp::markdown_table({"a", "b"}, {{"1"}}), cpdiff::shape_error);
  CHECK_THROWS_AS(rp::markdown_table({}, {}), cpdiff::shape_error);
}

TEST_CASE("markdown_results_table has one row per condition", "[report][json]") {
  rp::condition_result u = rte();
  u.condition = "l=0.050";
  u.seen = false;
  u.trained.reset();
  const std::string t = rp::markdown_results_table({rte(), u});
  CHECK(t.find("| glue_roberta_r1 | RTE ") != std::string::npos);
  CHECK(t.find("68.6") != std::string::npos);
  CHECK(t.find("unseen") != std::string::npos);
  CHECK(t.find("64.5") != std::string::npos);  // generated median
  CHECK(std::count(t.begin(), t.end(), '\n') == 4);
  CHECK(rp::format_number(std::nullopt) == "-");
  CHECK(rp::format_number(66.14, 1) == "66.1");
}
