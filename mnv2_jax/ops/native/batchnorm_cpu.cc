// Training-mode batch-norm reductions for XLA:CPU, as XLA FFI custom calls (float32, NHWC: the
// channel axis is last and contiguous, every other axis is reduced).
//
//   Mnv2BnMoments     x                              -> sum_x[c], sum_x2[c]
//   Mnv2BnActGradSums dy, x, mean, inv, scale, bias  -> sum_dz[c], sum_dz_xhat[c]
//       xhat = (x - mean) * inv,  z = xhat * scale + bias,
//       dz = dy * act'(z)   (attr relu6 = 1: 0 < z < 6; relu6 = 0: identity)
//
// Why: XLA:CPU emits each of these sums as its own library reduction over a materialised
// operand (sum x and sum x^2 are two passes over the conv output; the backward first writes dz,
// then reads it twice). Here each is one pass over its inputs, vectorised over channels. The
// elementwise parts (normalise + activation, and dx) stay in XLA, which fuses them with their
// neighbours. Rows are split into a fixed number of ranges whose partial sums are added in a
// fixed order (mnv2::OrderedPartialSums), so the result does not depend on the thread count.

#include <algorithm>
#include <cstdint>
#include <vector>

#include "parallel.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

// rows x channels view of a buffer whose last dimension is the channel axis.
void RowsChannels(ffi::Span<const int64_t> dims, int64_t* rows, int64_t* channels) {
  *channels = dims.size() == 0 ? 1 : dims[dims.size() - 1];
  int64_t count = 1;
  for (int64_t d : dims) count *= d;
  *rows = *channels == 0 ? 0 : count / *channels;
}

ffi::Error MomentsImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x,
                       ffi::ResultBuffer<ffi::F32> sum_x, ffi::ResultBuffer<ffi::F32> sum_x2) {
  int64_t rows, c;
  RowsChannels(x.dimensions(), &rows, &c);
  const float* xp = x.typed_data();
  std::vector<float> out(2 * c);
  mnv2::OrderedPartialSums(pool, rows, 2 * c, out.data(), [&](int64_t r, float* __restrict acc) {
    const float* __restrict row = xp + r * c;
    float* __restrict s = acc;
    float* __restrict q = acc + c;
    for (int64_t i = 0; i < c; ++i) {
      s[i] += row[i];
      q[i] += row[i] * row[i];
    }
  });
  std::copy(out.begin(), out.begin() + c, sum_x->typed_data());
  std::copy(out.begin() + c, out.end(), sum_x2->typed_data());
  return ffi::Error::Success();
}

ffi::Error ActGradSumsImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> dy,
                           ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> mean,
                           ffi::Buffer<ffi::F32> inv, ffi::Buffer<ffi::F32> scale,
                           ffi::Buffer<ffi::F32> bias, ffi::ResultBuffer<ffi::F32> sum_dz,
                           ffi::ResultBuffer<ffi::F32> sum_dz_xhat, int64_t relu6) {
  int64_t rows, c;
  RowsChannels(x.dimensions(), &rows, &c);
  if (dy.element_count() != x.element_count() || mean.element_count() != c ||
      inv.element_count() != c || scale.element_count() != c || bias.element_count() != c) {
    return ffi::Error::InvalidArgument("bn grad sums: inconsistent shapes");
  }
  const float* gp = dy.typed_data();
  const float* xp = x.typed_data();
  const float* __restrict m = mean.typed_data();
  const float* __restrict iv = inv.typed_data();
  const float* __restrict sc = scale.typed_data();
  const float* __restrict bi = bias.typed_data();
  std::vector<float> out(2 * c);
  mnv2::OrderedPartialSums(pool, rows, 2 * c, out.data(), [&](int64_t r, float* __restrict acc) {
    const float* __restrict xrow = xp + r * c;
    const float* __restrict grow = gp + r * c;
    float* __restrict s = acc;
    float* __restrict q = acc + c;
    if (relu6) {
      for (int64_t i = 0; i < c; ++i) {
        const float xhat = (xrow[i] - m[i]) * iv[i];
        const float z = xhat * sc[i] + bi[i];
        const float dz = (z > 0.0f && z < 6.0f) ? grow[i] : 0.0f;
        s[i] += dz;
        q[i] += dz * xhat;
      }
    } else {
      for (int64_t i = 0; i < c; ++i) {
        const float xhat = (xrow[i] - m[i]) * iv[i];
        s[i] += grow[i];
        q[i] += grow[i] * xhat;
      }
    }
  });
  std::copy(out.begin(), out.begin() + c, sum_dz->typed_data());
  std::copy(out.begin() + c, out.end(), sum_dz_xhat->typed_data());
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(Mnv2BnMoments, MomentsImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(Mnv2BnActGradSums, ActGradSumsImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("relu6"));
