// Reader of the rm section (see rm_config.h).
#include "trainer/config/rm_config.h"

#include "trainer/config/reader.h"

namespace keel::config {

void read_rm(Reader& r, RmSection& c) {
  r.section("loss", "Bradley–Terry loss variants (spec D1)", [&](Reader& s) {
    s.field("margin", c.loss.margin,
            "margin inside the loss: none, fixed (per pair, JSONL key margin_key), adaptive (ensemble mean μ̂)")
        .one_of({"none", "fixed", "adaptive"}, "margin");
    s.field("margin_key", c.loss.margin_key, "JSONL key of a pair's margin (margin: fixed)").nonempty();
    s.field("label_smoothing", c.loss.label_smoothing, "α: weight of the swapped-pair term").ge(0).lt(0.5);
    s.field("reg_lambda", c.loss.reg_lambda, "λ of the L2 penalty on rewards λ·(r_c² + r_r²); 0 = off").ge(0);
  });
  r.section("ensemble", "reward models measuring preference strength (spec D2)", [&](Reader& s) {
    s.field("paths", c.ensemble.paths, "trained reward-model directories; their mean score gap μ̂ is the adaptive margin");
    s.field("flip_negative_strength", c.ensemble.flip_negative_strength,
            "swap chosen and rejected of pairs whose ensemble strength μ̂ is negative");
  });
  const bool need_ensemble = c.loss.margin == "adaptive" || c.ensemble.flip_negative_strength;
  if (need_ensemble && c.ensemble.paths.empty())
    r.error("ensemble", "margin: adaptive and flip_negative_strength need ensemble.paths (reward models trained "
                        "with keel train-rm, e.g. with different run.seed)");
}

}  // namespace keel::config
