// Ghost batch norm on the CPU for channels-last float32 activations: each group of `ghost` consecutive images (and a
// last, smaller group) is normalized with its own per-channel mean and variance, in one pass for each statistic and
// one for the output, as ATen's batch norm does for a whole batch. In channels-last memory a group is one block of
// rows [images x H x W] of C floats, so a group is read in place: no copy, no transpose (ghost_kernel.py times it).
//
// Sums run in double, in a fixed order within a group; a group is computed by one thread whatever the thread count,
// and the gradients of the affine pair are summed over the groups in order: bitwise identical for any thread count.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>
#include <tuple>
#include <vector>

namespace {

struct Shape {
  int64_t groups, channels, rows_per_image, ghost, images;
  int64_t first_row(int64_t group) const { return group * ghost * rows_per_image; }
  int64_t end_row(int64_t group) const { return std::min((group + 1) * ghost, images) * rows_per_image; }
};

Shape shape_of(const at::Tensor& x, int64_t ghost) {
  TORCH_CHECK(x.dim() == 4, "ghost batch norm takes [N, C, H, W] activations, not ", x.dim(), " dimensions");
  TORCH_CHECK(x.scalar_type() == at::kFloat, "the ghost batch norm kernel takes float32, not ", x.scalar_type());
  TORCH_CHECK(x.is_contiguous(at::MemoryFormat::ChannelsLast), "the ghost batch norm kernel takes channels-last input");
  TORCH_CHECK(ghost >= 2, "ghost batch norm needs groups of at least 2 images, not ", ghost);
  const int64_t images = x.size(0);
  return {(images + ghost - 1) / ghost, x.size(1), x.size(2) * x.size(3), ghost, images};
}

// A per-channel parameter as the kernel reads it: float32, C values, contiguous.
at::Tensor affine(const at::Tensor& values, int64_t channels) {
  TORCH_CHECK(values.scalar_type() == at::kFloat && values.numel() == channels,
              "ghost batch norm's weight and bias must be float32 with one value per channel (", channels, ")");
  return values.contiguous();
}

// y = x * scale + shift per channel, with each group's mean, 1/sqrt(var + eps) and unbiased variance [groups, C].
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> ghost_forward(
    const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias, int64_t ghost, double eps) {
  const Shape s = shape_of(input, ghost);
  const at::Tensor x = input.contiguous(at::MemoryFormat::ChannelsLast);
  at::Tensor y = at::empty_like(x, at::MemoryFormat::ChannelsLast);
  at::Tensor mean = at::empty({s.groups, s.channels}, x.options());
  at::Tensor invstd = at::empty_like(mean), unbiased = at::empty_like(mean);
  // Held here: a pointer into a temporary's storage would dangle once the temporary is gone.
  const at::Tensor weights = affine(weight, s.channels), biases = affine(bias, s.channels);
  const float* xs = x.const_data_ptr<float>();
  const float* w = weights.const_data_ptr<float>();
  const float* b = biases.const_data_ptr<float>();
  float* ys = y.data_ptr<float>();
  float* means = mean.data_ptr<float>();
  float* invstds = invstd.data_ptr<float>();
  float* unbiaseds = unbiased.data_ptr<float>();
  const int64_t C = s.channels;
  at::parallel_for(0, s.groups, 1, [&](int64_t begin, int64_t end) {
    std::vector<double> sum(C), squares(C);
    std::vector<float> scale(C), shift(C), centre(C);
    for (int64_t g = begin; g < end; ++g) {
      const int64_t first = s.first_row(g), last = s.end_row(g);
      const double count = static_cast<double>(last - first);
      std::fill(sum.begin(), sum.end(), 0.0);
      std::fill(squares.begin(), squares.end(), 0.0);
      for (int64_t r = first; r < last; ++r) {
        const float* row = xs + r * C;
        for (int64_t c = 0; c < C; ++c) sum[c] += row[c];
      }
      for (int64_t c = 0; c < C; ++c) centre[c] = static_cast<float>(sum[c] / count);
      for (int64_t r = first; r < last; ++r) {
        const float* row = xs + r * C;
        for (int64_t c = 0; c < C; ++c) {
          const double d = static_cast<double>(row[c]) - centre[c];
          squares[c] += d * d;
        }
      }
      for (int64_t c = 0; c < C; ++c) {
        const double var = squares[c] / count;
        const float inv = static_cast<float>(1.0 / std::sqrt(var + eps));
        means[g * C + c] = centre[c];
        invstds[g * C + c] = inv;
        unbiaseds[g * C + c] = static_cast<float>(squares[c] / (count - 1.0));
        scale[c] = w[c] * inv;
        shift[c] = b[c] - centre[c] * scale[c];
      }
      for (int64_t r = first; r < last; ++r) {
        const float* row = xs + r * C;
        float* out = ys + r * C;
        for (int64_t c = 0; c < C; ++c) out[c] = row[c] * scale[c] + shift[c];
      }
    }
  });
  return {y, mean, invstd, unbiased};
}

// The gradients of x, weight and bias through each group's own normalization (its statistics depend on x).
std::tuple<at::Tensor, at::Tensor, at::Tensor> ghost_backward(
    const at::Tensor& grad_out, const at::Tensor& input, const at::Tensor& weight, const at::Tensor& mean,
    const at::Tensor& invstd, int64_t ghost) {
  const Shape s = shape_of(input, ghost);
  const at::Tensor x = input.contiguous(at::MemoryFormat::ChannelsLast);
  const at::Tensor dy = grad_out.contiguous(at::MemoryFormat::ChannelsLast);
  at::Tensor dx = at::empty_like(x, at::MemoryFormat::ChannelsLast);
  const int64_t C = s.channels;
  std::vector<double> group_dweight(s.groups * C), group_dbias(s.groups * C);
  const at::Tensor weights = affine(weight, C);
  const float* xs = x.const_data_ptr<float>();
  const float* dys = dy.const_data_ptr<float>();
  const float* w = weights.const_data_ptr<float>();
  const float* means = mean.const_data_ptr<float>();
  const float* invstds = invstd.const_data_ptr<float>();
  float* dxs = dx.data_ptr<float>();
  at::parallel_for(0, s.groups, 1, [&](int64_t begin, int64_t end) {
    std::vector<double> sum_dy(C), sum_dy_centred(C);
    std::vector<float> a(C), k(C), offset(C);
    for (int64_t g = begin; g < end; ++g) {
      const int64_t first = s.first_row(g), last = s.end_row(g);
      const double count = static_cast<double>(last - first);
      const float* centre = means + g * C;
      const float* inv = invstds + g * C;
      std::fill(sum_dy.begin(), sum_dy.end(), 0.0);
      std::fill(sum_dy_centred.begin(), sum_dy_centred.end(), 0.0);
      for (int64_t r = first; r < last; ++r) {
        const float* row = xs + r * C;
        const float* grad = dys + r * C;
        for (int64_t c = 0; c < C; ++c) {
          sum_dy[c] += grad[c];
          sum_dy_centred[c] += static_cast<double>(grad[c]) * (row[c] - centre[c]);
        }
      }
      // dx = w * inv * (dy - mean(dy) - (x - mean) * inv^2 * mean(dy * (x - mean))) = dy * a + x * k + offset.
      for (int64_t c = 0; c < C; ++c) {
        group_dweight[g * C + c] = sum_dy_centred[c] * inv[c];
        group_dbias[g * C + c] = sum_dy[c];
        a[c] = w[c] * inv[c];
        k[c] = static_cast<float>(-static_cast<double>(a[c]) * inv[c] * inv[c] * sum_dy_centred[c] / count);
        offset[c] = static_cast<float>(-static_cast<double>(a[c]) * sum_dy[c] / count) - centre[c] * k[c];
      }
      for (int64_t r = first; r < last; ++r) {
        const float* row = xs + r * C;
        const float* grad = dys + r * C;
        float* out = dxs + r * C;
        for (int64_t c = 0; c < C; ++c) out[c] = grad[c] * a[c] + row[c] * k[c] + offset[c];
      }
    }
  });
  at::Tensor dweight = at::zeros({C}, weight.options()), dbias = at::zeros({C}, weight.options());
  float* dw = dweight.data_ptr<float>();
  float* db = dbias.data_ptr<float>();
  for (int64_t c = 0; c < C; ++c) {
    double weight_sum = 0.0, bias_sum = 0.0;
    for (int64_t g = 0; g < s.groups; ++g) {
      weight_sum += group_dweight[g * C + c];
      bias_sum += group_dbias[g * C + c];
    }
    dw[c] = static_cast<float>(weight_sum);
    db[c] = static_cast<float>(bias_sum);
  }
  return {dx, dweight, dbias};
}

}  // namespace

TORCH_LIBRARY(normstudy, m) {
  m.def("ghost_batch_norm(Tensor x, Tensor weight, Tensor bias, int ghost, float eps) -> (Tensor, Tensor, Tensor, Tensor)");
  m.def(
      "ghost_batch_norm_backward(Tensor grad_out, Tensor x, Tensor weight, Tensor mean, Tensor invstd, int ghost)"
      " -> (Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(normstudy, CPU, m) {
  m.impl("ghost_batch_norm", &ghost_forward);
  m.impl("ghost_batch_norm_backward", &ghost_backward);
}
