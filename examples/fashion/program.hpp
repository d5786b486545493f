#pragma once
// The whole program on backend Dev (cond_pdiff_fashion.cpp: cpu; cond_pdiff_fashion_cuda.cu: cuda): the flags,
// the base the --base and --lora flags name, then the experiments --experiments names, then the report.

#include "experiment.hpp"
#include "flags.hpp"
#include "interp.hpp"
#include "styles.hpp"
#include "tasks.hpp"

#include <cpdiff/core/openmp_wait.hpp>

#include <cstdio>
#include <iostream>
#include <streambuf>

namespace fashion {

// The experiments on base Model; make() builds one from the seed (its base weights are then copied from the
// pre-trained one).
template <class Model, class Dev>
int run_experiments(const flags& f, typename experiment_context<Model, Dev>::model_factory make) {
  experiment_context<Model, Dev> ctx(f, std::move(make));
  std::cout << std::setprecision(4);
  if (f.runs("tasks")) run_tasks(ctx);
  if (f.runs("styles") || f.runs("interp")) {
    style_collection styles = collect_styles(ctx);
    if (f.runs("styles")) run_styles(ctx, styles);
    if (f.runs("interp")) run_interp(ctx, lora_line{styles.best(0), styles.best(1)});
  }
  if (f.writes()) ctx.report.write();
  std::cout << "\nwrote " << (f.out / "report.md").string() << ", report.json, figures and adapters  ["
            << ctx.seconds() << " s]\n";
  return 0;
}

// The base --base and --lora name.
template <class Dev>
int run_on_base(const flags& f) {
  auto vit = [&]<class Model>() {
    const auto [rank, alpha] = example::parse_rank_alpha(f.lora, "cond_pdiff_fashion: --lora");
    return run_experiments<Model, Dev>(f, [&f, rank, alpha] {
      return std::make_unique<Model>(f.seed, models::peft_lora_config{.rank = rank, .alpha = alpha});
    });
  };
  if (f.base == "vit") return vit.template operator()<vit_model>();
  if (f.base == "vit-paper") return vit.template operator()<vit_paper_model>();
  auto mlp = [&]<class Model>() { return run_experiments<Model, Dev>(f, [&f] { return std::make_unique<Model>(f.seed); }); };
  if (f.lora == "1,8") return mlp.template operator()<mlp_r1>();
  if (f.lora == "2,8") return mlp.template operator()<mlp_r2>();
  if (f.lora == "4,16") return mlp.template operator()<mlp_r4>();
  if (f.lora == "16,32") return mlp.template operator()<mlp_r16>();
  throw config_error("cond_pdiff_fashion: --base mlp takes --lora 1,8 2,8 4,16 or 16,32 (got '" + f.lora + "')");
}

// comm: the ranks of an mpirun job (cond_pdiff_fashion.cpp), or nullptr for one process.
template <class Dev>
int fashion_main(int argc, char** argv, train::communicator* comm = nullptr) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress lines appear as they are written, also in a log file
  // The ranks other than 0 print nothing (their std::cout goes nowhere until this returns); errors still show.
  struct discard : std::streambuf {
    int overflow(int c) override { return traits_type::not_eof(c); }
  } nowhere;
  struct restore {
    std::streambuf* buf;
    ~restore() { std::cout.rdbuf(buf); }
  } keep{std::cout.rdbuf()};
  if (comm && !comm->is_root()) std::cout.rdbuf(&nowhere);
  if (comm) std::cout << "data parallel: " << comm->size() << " ranks (" << comm->name() << ")\n";
  try {
    std::optional<flags> f = parse_flags(argc, argv);
    if (!f) return 0;  // --help
    f->comm = comm;
    return run_on_base<Dev>(*f);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace fashion
