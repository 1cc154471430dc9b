// Classify one image with an exported image classifier, using only the edgert library.
//
//   classify_image runs/fashion-kd/03-export/student@s0 shoe.pgm
//
// The artifact folder's signature file gives the input name, the preprocessing (normalisation
// constants) and the class labels; the image is a binary PGM/PPM of the model's input size.
// Prints the three most likely classes with their softmax scores.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "edgert/error.hpp"
#include "edgert/image.hpp"
#include "edgert/model.hpp"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: classify_image ARTIFACT IMAGE.pgm\n");
    return 2;
  }
  try {
    edgert::Model model = edgert::Model::load(argv[1]);
    const edgert::Signature& sig = model.signature();
    edgert::Tensor x = edgert::preprocess(edgert::read_pnm(argv[2]), sig.preprocessing, argv[2]);
    auto outputs = model.run({{model.inputs()[0].name, x}});
    const edgert::Tensor& logits = outputs.at(model.outputs()[0].name);  // (1, k)
    const float* z = logits.as<float>();
    const size_t k = logits.elements();
    if (sig.labels.size() != k) throw edgert::Error("the signature has no label for each class");

    const float top = *std::max_element(z, z + k);
    std::vector<double> p(k);
    for (size_t i = 0; i < k; ++i) p[i] = std::exp(static_cast<double>(z[i] - top));
    const double total = std::accumulate(p.begin(), p.end(), 0.0);
    std::vector<size_t> order(k);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] > p[b]; });
    for (size_t i = 0; i < std::min<size_t>(3, k); ++i)
      std::printf("%6.2f%%  %s\n", 100.0 * p[order[i]] / total, sig.labels[order[i]].c_str());
  } catch (const edgert::Error& e) {
    std::fprintf(stderr, "classify_image: error: %s\n", e.what());
    return 2;
  }
  return 0;
}
