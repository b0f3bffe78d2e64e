#!/usr/bin/python3
"""Recomputes the numbers of `robustlens latent` with the reference code.

The reference is luigisbailo/binary_encoding (its binary_encoding/metrics.py,
which needs NumPy, SciPy and scikit-learn: Debian's python3-sklearn). This
script imports it from a checkout the user gives; nothing of it is copied here.
It reads what `robustlens latent --save-latents --out OUT` wrote: the latents
of OUT/NAME/latents.pt and robustlens's numbers in OUT/latent.json.

    /usr/bin/python3 scripts/latent_reference_check.py REFERENCE_CHECKOUT OUT [NAME ...]

The reference's Mahalanobis AUROC is a 101-point quantile approximation; the
exact AUROC of the reference's own scores (scikit-learn's roc_auc_score) is
printed beside it. Its within-class "sigma_w" is the mean of all entries of
Sigma_W; robustlens reports tr(Sigma_W)/P, so the script prints both.
"""
import json
import sys

import numpy as np
import torch
from sklearn.metrics import roc_auc_score


def main(reference, out, names):
    sys.path.insert(0, reference)
    from binary_encoding import metrics  # noqa: E402 (the reference, from the given checkout)

    record = json.load(open(f"{out}/latent.json"))
    models = {m["name"]: m["result"] for m in record["models"]}
    for name in names or list(models):
        ours = models[name]
        saved = torch.load(f"{out}/{name}/latents.pt")
        get = lambda key: saved[key].numpy()
        train = {"x_penultimate": get("train_latent"), "y_label": get("train_labels"), "y_predicted": get("train_predicted")}
        test = {"x_penultimate": get("test_latent"), "y_label": get("test_labels"), "y_predicted": get("test_predicted")}
        misclassified = test["y_label"] != test["y_predicted"]

        binarity = metrics.get_binarity_metrics(train)
        collapse = metrics.get_collapse_metrics(test)
        mahalanobis = metrics.get_mahalanobis_score(train, test)
        reference_scores = np.concatenate([mahalanobis["score_classified_test"], mahalanobis["score_misclassified_test"]])
        reference_labels = np.concatenate([np.zeros(len(mahalanobis["score_classified_test"])),
                                           np.ones(len(mahalanobis["score_misclassified_test"]))])
        logits = torch.tensor(get("test_logits"), dtype=torch.float64)
        odin = -torch.softmax(logits / ours["options"]["odin_temperature"], 1).max(1).values.numpy()
        sigma_w = np.mean([np.cov(test["x_penultimate"][test["y_predicted"] == c].T)
                           for c in np.unique(test["y_label"]) if np.sum(test["y_predicted"] == c) > 1], axis=0)

        rows = [
            ("binarity separation (train)", ours["binarity"]["separation"], binarity["peaks_distance_mean"]),
            ("binarity mean std (train)", ours["binarity"]["mean_std"], binarity["stds"]),
            ("binarity mean log-likelihood (train)", ours["binarity"]["mean_log_likelihood"], binarity["score"]),
            ("same-encoding fraction (test)", ours["encoding"]["test"]["same_encoding_fraction"],
             metrics.get_same_encoding_fraction(test)),
            ("NC1 (test)", ours["collapse"]["test"]["nc1"], collapse["within_class_variation"]),
            ("within-class variance tr/P (test)", ours["collapse"]["test"]["within_class_variance"],
             np.trace(np.atleast_2d(sigma_w)) / train["x_penultimate"].shape[1]),
            ("equiangularity (test)", ours["collapse"]["test"]["equiangularity"], collapse["equiangular"]),
            ("equinorm (test)", ours["collapse"]["test"]["equinorm"], collapse["equinorm"]),
            ("Mahalanobis AUROC, exact", ours["reliability"]["mahalanobis_auroc"],
             roc_auc_score(reference_labels, reference_scores)),
            ("Mahalanobis AUROC, reference quantiles", ours["reliability"]["mahalanobis_auroc"], mahalanobis["auroc"]),
            ("ODIN AUROC (T = %g)" % ours["options"]["odin_temperature"], ours["reliability"]["odin_auroc"],
             roc_auc_score(misclassified, odin)),
        ]
        print(f"\n{name}: P = {ours['latent_dim']}, {int(misclassified.sum())} misclassified test images "
              f"(reference's sigma_w, the mean of all entries of Sigma_W: {collapse['sigma_w']:.4g})")
        print(f"| measure | robustlens | reference |\n|---|---|---|")
        for label, mine, theirs in rows:
            print(f"| {label} | {mine:.6g} | {float(theirs):.6g} |")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
