// Reader of the rm section (see rm_config.h).
#include "trainer/config/rm_config.h"

#include "base/reader.h"

namespace keel::config {

void read_rm(Reader& r, RmSection& c) {
  r.field("variant", c.variant,
          "bt: Bradley–Terry; odin: quality + length heads, only quality scored (D3); discriminator: "
          "BCE(chosen as expert, rejected as agent), reward −log(1 − σ(score)) (D6)")
      .one_of({"bt", "odin", "discriminator"}, "reward-model variant");
  r.section("loss", "Bradley–Terry loss variants (spec D1)", [&](Reader& s) {
    s.field("margin", c.loss.margin,
            "margin inside the loss: none, fixed (per pair, JSONL key margin_key), adaptive (ensemble mean μ̂)")
        .one_of({"none", "fixed", "adaptive"}, "margin");
    s.field("margin_key", c.loss.margin_key, "JSONL key of a pair's margin (margin: fixed)").nonempty();
    s.field("label_smoothing", c.loss.label_smoothing, "α: weight of the swapped-pair term").ge(0).lt(0.5);
    s.field("reg_lambda", c.loss.reg_lambda, "λ of the L2 penalty on rewards λ·(r_c² + r_r²); 0 = off").ge(0);
    s.section("grad_penalty", "gradient penalty on interpolated input embeddings (spec D6)", [&](Reader& g) {
      auto& gp = c.loss.grad_penalty;
      g.field("enabled", gp.enabled, "add λ·E[max(0, ‖∇_ẑ f(ẑ)‖₂ − k)²] to the loss (needs double backward: slower)");
      g.field("lambda", gp.lambda, "λ, the penalty's scale").ge(0);
      g.field("target", gp.target, "k, the gradient norm aimed at").ge(0);
      g.field("one_sided", gp.one_sided, "true: only norms above k are penalised; false: (‖∇‖ − k)²");
      g.field("type", gp.type, "interpolation: wgan (ẑ = ε·z_chosen + (1−ε)·z_rejected, ε ~ U(0,1) per pair)")
          .one_of({"wgan"}, "gradient-penalty type");
      g.field("output", gp.output, "f whose gradient is penalised: probability (D = σ(score)) or logit (the score)")
          .one_of({"probability", "logit"}, "penalised output");
    });
  });
  r.section("odin", "ODIN length-disentangled heads (spec D3; rm.variant: odin)", [&](Reader& s) {
    s.field("length_weight", c.odin.length_weight, "weight of |corr(r_Q, len)| − corr(r_L, len) (PAR reward_odin_L)").ge(0);
    s.field("ortho_weight", c.odin.ortho_weight, "weight of |cos(w_Q, w_L)| (PAR reward_odin_O)").ge(0);
  });
  r.section("ensemble", "reward models measuring preference strength (spec D2)", [&](Reader& s) {
    s.field("size", c.ensemble.size,
            "M >= 2: train M members (run.seed + m) in <run dir>/member_<m> and log their strengths; 0 = none")
        .ge(0);
    s.field("paths", c.ensemble.paths, "trained reward-model directories; their mean score gap μ̂ is the adaptive margin");
    s.field("flip_negative_strength", c.ensemble.flip_negative_strength,
            "swap chosen and rejected of pairs whose ensemble strength μ̂ is negative");
  });
  const bool need_ensemble = c.loss.margin == "adaptive" || c.ensemble.flip_negative_strength;
  if (need_ensemble && c.ensemble.paths.empty() && c.ensemble.size < 2)
    r.error("ensemble", "margin: adaptive and flip_negative_strength need ensemble.paths (reward models trained "
                        "with keel train-rm, e.g. with different run.seed) or ensemble.size >= 2");
  if (c.ensemble.size == 1) r.error("ensemble.size", "must be 0 (no ensemble) or >= 2 (members trained in this run), got 1");
  if (c.ensemble.size >= 2 && !c.ensemble.paths.empty())
    r.error("ensemble", "give either size (train the members here) or paths (members trained before), not both");
  if (c.variant == "odin" && c.loss.grad_penalty.enabled)
    r.error("loss.grad_penalty", "the gradient penalty is for variant bt or discriminator, not odin");
}

}  // namespace keel::config
