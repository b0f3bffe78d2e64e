# Sourced by the experiment scripts: the five LeNet models (3 epochs of
# Fashion-MNIST) they share, trained under runs/frequency-margins/NAME/ and
# reused when already there.
#   standard   plain training
#   flipped    trained on DCT-flipped images (transform dct-flip)
#   low-pass   trained on low-passed images (transform low-pass:14)
#   pgd-l2     L2 PGD adversarial training, eps 2
#   flipped-pgd-l2  L2 PGD adversarial training, eps 2, on DCT-flipped images (Hold me tight!'s
#              adversarial training on flipped data)
robustlens=${ROBUSTLENS_BUILD_DIR:-build}/tools/robustlens/robustlens
models=runs/frequency-margins
experiment_names=(standard flipped low-pass pgd-l2 flipped-pgd-l2)

transform_of() {  # NAME
  case $1 in
    flipped | flipped-pgd-l2) echo dct-flip ;;
    low-pass) echo low-pass:14 ;;
    *) echo none ;;
  esac
}

train_experiment_model() {  # NAME
  local extra=()
  [[ $1 == *pgd-l2 ]] && extra=(--objective pgd-l2 --eps 2)
  "$robustlens" train --arch lenet --epochs 3 --transform "$(transform_of "$1")" --out "$models/$1" "${extra[@]}"
}
