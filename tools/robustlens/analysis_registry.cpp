#include "analysis_registry.h"

#include "robustlens/core/error.h"

namespace robustlens::cli {

const std::vector<Analysis>& analysis_registry() {
  static const std::vector<Analysis> registry = {
      train_vae_analysis(), train_denoiser_analysis(), eval_analysis(),     attack_analysis(),
      explain_analysis(),   margins_analysis(),        spectral_analysis(), upi_analysis(),
      manifold_analysis(),  align_analysis(),          latent_analysis()};
  return registry;
}

const Analysis& registered_analysis(const std::string& name) {
  for (const Analysis& analysis : analysis_registry()) {
    if (analysis.name == name) return analysis;
  }
  throw Error("unknown analysis '" + name + "' (expected one of " + skippable_analyses() +
              ", train-vae, train-denoiser)");
}

std::string skippable_analyses() {
  std::string names;
  for (const Analysis& analysis : analysis_registry()) {
    if (analysis.scope != AuditScope::kGenerative) names += (names.empty() ? "" : ", ") + analysis.name;
  }
  return names;
}

}  // namespace robustlens::cli
