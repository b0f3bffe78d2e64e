// The tangent bases and their comparison of the manifold analyses (analyses/manifold.h): local PCA of each image's
// nearest same-class neighbours, and the agreement of two bases.
#include "robustlens/analyses/manifold.h"

#include "robustlens/core/error.h"

#include <ATen/ops/cdist.h>
#include <ATen/ops/linalg_svd.h>

namespace robustlens {

at::Tensor local_pca_basis(const at::Tensor& images, const at::Tensor& labels, const Dataset& reference,
                           std::int64_t neighbours, std::int64_t k) {
  RL_CHECK(k >= 1 && neighbours > k, "local PCA needs 1 <= k < neighbours, got k ", k, " and ", neighbours,
           " neighbours");
  RL_CHECK(images.dim() == 4 && images.sizes().slice(1) == reference.images.sizes().slice(1), "local PCA: images ",
           images.sizes(), " do not match the reference images ", reference.images.sizes());
  const std::int64_t n = images.size(0), dim = images[0].numel();
  RL_CHECK(k <= dim, "local PCA: k (", k, ") exceeds the ", dim, " pixels of an image");
  if (n > 0) {
    const std::int64_t low = labels.min().item<std::int64_t>(), high = labels.max().item<std::int64_t>();
    RL_CHECK(low >= 0 && high < reference.num_classes(), "local PCA: labels must lie in [0, ",
             reference.num_classes() - 1, "] (the reference's classes), got [", low, ", ", high, "]");
  }
  at::Tensor basis = at::empty({n, dim, k}, images.options());
  const at::Tensor flat = images.flatten(1);
  const at::Tensor reference_flat = reference.images.flatten(1).to(images.device());
  const at::Tensor reference_labels = reference.labels.to(images.device());
  const at::Tensor query_labels = labels.to(images.device());
  for (std::int64_t c = 0; c < reference.num_classes(); ++c) {
    const at::Tensor queries = (query_labels == c).nonzero().flatten();
    if (queries.numel() == 0) continue;
    const at::Tensor members = reference_flat.index_select(0, (reference_labels == c).nonzero().flatten());
    RL_CHECK(members.size(0) >= neighbours, "local PCA: class ", c, " has ", members.size(0),
             " reference images, fewer than the ", neighbours, " neighbours asked for");
    const at::Tensor nearest =
        std::get<1>(at::cdist(flat.index_select(0, queries), members).topk(neighbours, 1, false));
    const at::Tensor patches = members.index_select(0, nearest.flatten()).view({queries.size(0), neighbours, dim});
    const at::Tensor centred = patches - patches.mean(1, true);
    // Rows of Vh are the principal directions, by decreasing singular value.
    const at::Tensor directions = std::get<2>(at::linalg_svd(centred, false)).slice(1, 0, k);
    basis.index_copy_(0, queries, directions.transpose(1, 2));
  }
  return basis;
}

double subspace_agreement(const at::Tensor& basis_a, const at::Tensor& basis_b) {
  RL_CHECK(basis_a.dim() == 3 && basis_a.sizes() == basis_b.sizes(),
           "subspace agreement needs two N×D×k bases of "
           "the same shape, got ",
           basis_a.sizes(), " and ", basis_b.sizes());
  const double k = static_cast<double>(basis_a.size(2));
  return (at::bmm(basis_a.transpose(1, 2), basis_b).pow(2).sum({1, 2}) / k).mean().item<double>();
}

}  // namespace robustlens
