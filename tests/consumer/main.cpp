// Built against an installed cpdiff: one linear layer forward and backward.
#include <cpdiff/cpdiff.hpp>
#include <iostream>

int main() {
  using namespace cpdiff;
  parameter_store<float, cpu> ps;
  rng g{1};
  nn::linear<3, 2> fc(ps, "fc", g);
  tensor<float, cpu> x({4, 3});
  ops::fill_normal(cpu{}, x.view(), 0.0f, 1.0f, 1, 0);
  auto y = fc.forward(x.cview());
  auto dx = fc.backward(y);
  std::cout << "cpdiff consumer: y " << y.shape() << ", dx " << dx.shape() << ", " << ps.size()
            << " parameters: ok\n";
  return y.shape() == shape{4, 2} && dx.shape() == shape{4, 3} && ps.size() == 8 ? 0 : 1;
}
