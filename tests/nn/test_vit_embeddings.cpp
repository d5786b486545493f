#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/nn/vit_embeddings.hpp"
#include "support/fixtures.hpp"
#include "support/gradcheck.hpp"

using namespace cpdiff;

TEST_CASE("vit_embeddings: gradcheck of the images, the projection, the class token and the positions",
          "[nn][attention]") {
  parameter_store<double, cpu> ps;
  rng g{4};
  nn::vit_embeddings<2, 6, 3, 5, double> emb(ps, "emb", g);
  testing::gradcheck(emb, ps, {2, 2, 6, 6});
}

TEST_CASE("vit_embeddings: Hugging Face's names and shapes; token 0 is the class token; bad images are refused",
          "[nn][attention]") {
  parameter_store<float, cpu> ps;
  rng g{1};
  nn::vit_embeddings<1, 28, 7, 16> emb(ps, "vit.embeddings", g);
  REQUIRE(ps.entries().size() == 4);
  CHECK(ps.entries()[0].name == "vit.embeddings.patch_embeddings.projection.weight");
  CHECK(ps.entries()[0].shape == shape{16, 1, 7, 7});
  CHECK(ps.entries()[2].name == "vit.embeddings.cls_token");
  CHECK(ps.entries()[2].shape == shape{1, 1, 16});
  CHECK(ps.entries()[3].name == "vit.embeddings.position_embeddings");
  CHECK(ps.entries()[3].shape == shape{1, 17, 16});
  tensor<float, cpu> x({3, 1, 28, 28});
  ops::fill_normal(cpu{}, x.view(), 0.0f, 1.0f, 2, 0);
  const auto y = emb.forward(x.cview());
  REQUIRE(y.shape() == shape{3, 17, 16});
  for (std::size_t n = 0; n < 3; ++n)
    for (std::size_t d = 0; d < 16; ++d)  // the class token's row does not depend on the image
      CHECK(y(n, 0, d) == emb.cls_token()(0, 0, d) + emb.position_embeddings()(0, 0, d));
  tensor<float, cpu> wrong({3, 1, 27, 28});
  CHECK_THROWS_WITH(emb.forward(wrong.cview()),
                    Catch::Contains("nn::vit_embeddings::forward: images: expected [N, 1, 28, 28], got [3, 1, 27, 28]"));
}
