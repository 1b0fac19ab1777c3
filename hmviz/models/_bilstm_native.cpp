// AttentiveChrome's per-mark bidirectional LSTMs (input size 1), forward and backward through time,
// as one compiled loop per LSTM. Built on first use by hmviz/models/_native.py (torch's
// cpp_extension, the machine's own C++ compiler); PerMarkBiLSTM falls back to its eager
// implementations where no compiler is available. Same arithmetic as torch.nn.LSTM (gate order
// i, f, g, o); the checks live in tests/test_models.py.
//
// Layout. The G = 2M LSTMs are indexed g: g < M is mark g read forwards, g >= M is mark g-M read
// backwards (processing step t reads bin T-1-t). Inputs and outputs use the model's layouts
// (x: batch, bins, marks; out: batch, marks, bins, 2H with the forward half first); what the
// backward pass keeps is LSTM-major, (G, T, batch, .), processing order.
//
// Why it is fast: each LSTM runs its whole recurrence in one thread (the G LSTMs are split over
// torch's intra-op thread count, statically, so results do not depend on timing); one step of one
// gene is a (H) x (H, 4H) product with the weights in L1 cache, followed at once by the cell's
// element-wise work on the same 4H numbers, with no per-step call, allocation or pass over memory.
// The backward computes one step's gate gradients dz for all genes into a small buffer that stays
// in cache, then the gradient to the previous hidden state (dz W_hh) and the weight gradients
// (dz^T h, accumulated step by step), both register-blocked, so the per-step gate gradients are
// never written out.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <type_traits>
#include <vector>

namespace {

// tanh for float as a rational function, branch-free so the compiler vectorises it: x P(x^2) / Q(x^2)
// with the coefficients of Eigen's float tanh (degrees 13 / 6), |x| clamped at 7.905 where tanh
// rounds to 1. Absolute error below 3e-7 over the whole line (tests/test_models.py checks the
// LSTM against torch's).
inline float tanh_(float x) {
  constexpr float kClamp = 7.90531110763549805f;
  x = x < -kClamp ? -kClamp : (x > kClamp ? kClamp : x);  // (std::min/max's references stop vectorising)
  const float x2 = x * x;
  float p = -2.76076847742355e-16f;
  p = p * x2 + 2.00018790482477e-13f;
  p = p * x2 + -8.60467152213735e-11f;
  p = p * x2 + 5.12229709037114e-08f;
  p = p * x2 + 1.48572235717979e-05f;
  p = p * x2 + 6.37261928875436e-04f;
  p = p * x2 + 4.89352455891786e-03f;
  float q = 1.19825839466702e-06f;
  q = q * x2 + 1.18534705686654e-04f;
  q = q * x2 + 2.26843463243900e-03f;
  q = q * x2 + 4.89352518554385e-03f;
  return x * p / q;
}
inline double tanh_(double z) { return std::tanh(z); }
// sigmoid(z) = (1 + tanh(z / 2)) / 2 (absolute error below 2e-7)
inline float sigmoid(float z) { return 0.5f * tanh_(0.5f * z) + 0.5f; }
inline double sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }

// Run fn(g) for every LSTM g in [0, count) on torch's own intra-op threads (OpenMP), so no second
// pool of threads competes with torch's for the cores. Each LSTM is computed whole by one thread, in
// a fixed order, so results do not depend on the thread count or timing.
template <typename F>
void for_each_lstm(int64_t count, const F& fn) {
  at::parallel_for(0, count, 1, [&fn](int64_t begin, int64_t end) {
    for (int64_t g = begin; g < end; ++g) fn(g);
  });
}

// Large buffers (the output and what the backward keeps, tens of MB per batch) come from a small
// pool of blocks reused by exact size, so each training step writes into memory the process already
// holds instead of fresh pages the kernel must fault in and zero (which cost as much as the LSTM
// arithmetic). At most kPoolBytes are kept; the blocks return to the pool when torch frees the tensor.
class BlockPool {
 public:
  void* take(size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(bytes);
      if (it != free_.end()) {
        void* p = it->second;
        free_.erase(it);
        cached_ -= bytes;
        return p;
      }
    }
    void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
    TORCH_CHECK(p != nullptr, "out of memory allocating ", bytes, " bytes for the LSTM");
    return p;
  }
  void give_back(void* p, size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cached_ + bytes <= kPoolBytes) {
        free_.emplace(bytes, p);
        cached_ += bytes;
        return;
      }
    }
    std::free(p);
  }

 private:
  static constexpr size_t kPoolBytes = size_t(512) << 20;
  std::mutex mutex_;
  std::multimap<size_t, void*> free_;
  size_t cached_ = 0;
};

BlockPool& pool() {
  static BlockPool* instance = new BlockPool;  // never destroyed: tensors may outlive static destructors
  return *instance;
}

at::Tensor pooled_empty(at::IntArrayRef shape, const at::TensorOptions& options) {
  int64_t numel = 1;
  for (int64_t d : shape) numel *= d;
  const size_t bytes = std::max<size_t>(1, static_cast<size_t>(numel) * options.dtype().itemsize());
  void* p = pool().take(bytes);
  return at::from_blob(p, shape, [bytes](void* q) { pool().give_back(q, bytes); }, options);
}

template <typename T>
struct Forward {
  const T* x;       // (B, T, M)
  const T* w_t;     // (G, H, 4H): W_hh transposed
  const T* w_ih;    // (G, 4H)
  const T* bias;    // (G, 4H): b_ih + b_hh
  T* out;           // (B, M, T, 2H)
  T* gates;         // (G, T, B, 4H) activations i, f, g, o; null when not storing
  T* cells;         // (G, T, B, H) c_t
  T* tanh_c;        // (G, T, B, H)
  T* states;        // (G, T, B, H) h_t
  int64_t B, steps, M, H;
};

// Small dense kernels. With HC (the hidden size, known at compile time) and float, the 4H gate
// accumulators are GCC/Clang vector values that stay in registers across the H-long product; the
// generic versions (float64 for gradcheck, other hidden sizes) are plain loops.
typedef float vf __attribute__((vector_size(64), aligned(4), may_alias));  // 16 floats, unaligned ok
constexpr int kLanes = 16;
inline vf load(const float* p) { return *reinterpret_cast<const vf*>(p); }
inline void store(float* p, vf v) { *reinterpret_cast<vf*>(p) = v; }
inline float sum(vf v) {
  float s = 0.0f;
  for (int i = 0; i < kLanes; ++i) s += v[i];
  return s;
}

// z = bias + x w_ih + h W_hh^T (w_t is W_hh^T: H x 4H)
template <typename T, int HC>
inline void gate_inputs(T* __restrict z, const T* __restrict bias, const T* __restrict w_ih, T x,
                        const T* __restrict w_t, const T* __restrict h, int64_t H) {
  if constexpr (std::is_same_v<T, float> && HC > 0 && (4 * HC) % kLanes == 0) {
    constexpr int N = 4 * HC / kLanes;
    vf acc[N];
    for (int v = 0; v < N; ++v) acc[v] = load(bias + v * kLanes) + x * load(w_ih + v * kLanes);
    for (int k = 0; k < HC; ++k) {
      const float hk = h[k];
      const float* w = w_t + k * 4 * HC;
      for (int v = 0; v < N; ++v) acc[v] += hk * load(w + v * kLanes);
    }
    for (int v = 0; v < N; ++v) store(z + v * kLanes, acc[v]);
  } else {
    const int64_t H4 = 4 * H;
    for (int64_t j = 0; j < H4; ++j) z[j] = bias[j] + x * w_ih[j];
    for (int64_t k = 0; k < H; ++k)
      for (int64_t j = 0; j < H4; ++j) z[j] += h[k] * w_t[k * H4 + j];
  }
}

// dH = dZ W_hh for one step of all B genes: dZ (B x 4H), W_hh (4H x H), dH (B x H). Float with a
// specialised hidden size: NB genes at a time, so each loaded row of W_hh feeds NB genes'
// accumulators held in registers (one gene at a time would load two numbers per multiply-add).
template <typename T, int HC>
inline void hidden_grad(T* __restrict dh, const T* __restrict dz, const T* __restrict w_hh, int64_t B, int64_t H) {
  const int64_t H4 = 4 * H;
  int64_t b = 0;
  if constexpr (std::is_same_v<T, float> && HC > 0 && HC % kLanes == 0) {
    constexpr int N = HC / kLanes, NB = 16 / N > 0 ? 16 / N : 1;  // NB x N accumulators (16 registers)
    for (; b + NB <= B; b += NB) {
      vf acc[NB][N] = {};
      for (int j = 0; j < 4 * HC; ++j) {
        vf w[N];
        for (int v = 0; v < N; ++v) w[v] = load(w_hh + j * HC + v * kLanes);
        for (int n = 0; n < NB; ++n) {
          const float d = dz[(b + n) * H4 + j];
          for (int v = 0; v < N; ++v) acc[n][v] += d * w[v];
        }
      }
      for (int n = 0; n < NB; ++n)
        for (int v = 0; v < N; ++v) store(dh + (b + n) * HC + v * kLanes, acc[n][v]);
    }
  }
  for (; b < B; ++b) {  // the rows left over, and the generic sizes
    T* __restrict out = dh + b * H;
    const T* __restrict d = dz + b * H4;
    for (int64_t k = 0; k < H; ++k) out[k] = 0;
    for (int64_t j = 0; j < H4; ++j)
      for (int64_t k = 0; k < H; ++k) out[k] += d[j] * w_hh[j * H + k];
  }
}

template <typename T, int HC>
inline T dot(const T* __restrict a, const T* __restrict b, int64_t n) {
  if constexpr (std::is_same_v<T, float> && HC > 0 && (4 * HC) % kLanes == 0) {
    vf acc = {};
    for (int v = 0; v < 4 * HC; v += kLanes) acc += load(a + v) * load(b + v);
    return sum(acc);
  } else {
    T s = 0;
    for (int64_t j = 0; j < n; ++j) s += a[j] * b[j];
    return s;
  }
}

template <typename T, int HC>
void forward_lstm(const Forward<T>& a, int64_t g) {
  const int64_t H = HC ? HC : a.H, H4 = 4 * H, B = a.B, steps = a.steps, M = a.M;
  const int64_t mark = g % M, dir = g / M;
  const T* w_t = a.w_t + g * H * H4;
  const T* w_ih = a.w_ih + g * H4;
  const T* bias = a.bias + g * H4;
  std::vector<T> h_buf(2 * B * H, T(0)), c_buf(2 * B * H, T(0)), z_buf(H4), tc_buf(H);
  for (int64_t t = 0; t < steps; ++t) {
    const int64_t bin = dir ? steps - 1 - t : t;
    const T* h_prev = h_buf.data() + (t % 2) * B * H;
    T* h_next = h_buf.data() + ((t + 1) % 2) * B * H;
    const T* c_prev = c_buf.data() + (t % 2) * B * H;
    T* c_next = c_buf.data() + ((t + 1) % 2) * B * H;
    for (int64_t b = 0; b < B; ++b) {
      const int64_t row = (g * steps + t) * B + b;
      T* __restrict z = a.gates ? a.gates + row * H4 : z_buf.data();
      gate_inputs<T, HC>(z, bias, w_ih, a.x[(b * steps + bin) * M + mark], w_t, h_prev + b * H, H);
#pragma omp simd
      for (int64_t j = 0; j < 2 * H; ++j) z[j] = sigmoid(z[j]);  // i, f
#pragma omp simd
      for (int64_t j = 2 * H; j < 3 * H; ++j) z[j] = tanh_(z[j]);  // g
#pragma omp simd
      for (int64_t j = 3 * H; j < H4; ++j) z[j] = sigmoid(z[j]);  // o
      const T* __restrict cp = c_prev + b * H;
      T* __restrict cn = c_next + b * H;
      T* __restrict hn = h_next + b * H;
      T* __restrict tc = a.gates ? a.tanh_c + row * H : tc_buf.data();
#pragma omp simd
      for (int64_t k = 0; k < H; ++k) cn[k] = z[H + k] * cp[k] + z[k] * z[2 * H + k];
#pragma omp simd
      for (int64_t k = 0; k < H; ++k) tc[k] = tanh_(cn[k]);
#pragma omp simd
      for (int64_t k = 0; k < H; ++k) hn[k] = z[3 * H + k] * tc[k];
      std::memcpy(a.out + ((b * M + mark) * steps + bin) * 2 * H + dir * H, hn, H * sizeof(T));
      if (a.gates) {
        std::memcpy(a.cells + row * H, cn, H * sizeof(T));
        std::memcpy(a.states + row * H, hn, H * sizeof(T));
      }
    }
  }
}

// dW (4H x H) += dz^T h over a block of B rows: dz (B x 4H), h (B x H). R gate rows at a time so
// that each loaded row of h feeds R x H/16 accumulators held in registers (16 registers).
template <typename T, int HC>
inline void weight_grad(T* __restrict dw, const T* __restrict dz, const T* __restrict h, int64_t B, int64_t H) {
  if constexpr (std::is_same_v<T, float> && HC > 0 && HC % kLanes == 0) {
    constexpr int N = HC / kLanes, R = 16 / N > 0 ? 16 / N : 1, H4 = 4 * HC;
    for (int j = 0; j < H4; j += R) {
      vf acc[R][N];
      for (int r = 0; r < R; ++r)
        for (int v = 0; v < N; ++v) acc[r][v] = load(dw + (j + r) * HC + v * kLanes);
      for (int64_t b = 0; b < B; ++b) {
        vf hv[N];
        for (int v = 0; v < N; ++v) hv[v] = load(h + b * HC + v * kLanes);
        for (int r = 0; r < R; ++r) {
          const float d = dz[b * H4 + j + r];
          for (int v = 0; v < N; ++v) acc[r][v] += d * hv[v];
        }
      }
      for (int r = 0; r < R; ++r)
        for (int v = 0; v < N; ++v) store(dw + (j + r) * HC + v * kLanes, acc[r][v]);
    }
  } else {
    const int64_t H4 = 4 * H;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t j = 0; j < H4; ++j)
        for (int64_t k = 0; k < H; ++k) dw[j * H + k] += dz[b * H4 + j] * h[b * H + k];
  }
}

template <typename T>
struct Backward {
  const T* grad;    // (B, M, T, 2H): dL/d out
  const T* x;       // (B, T, M)
  const T* w_hh;    // (G, 4H, H)
  const T* w_ih;    // (G, 4H)
  const T* gates;   // (G, T, B, 4H)
  const T* cells;   // (G, T, B, H)
  const T* tanh_c;  // (G, T, B, H)
  const T* states;  // (G, T, B, H)
  T* d_w_hh;        // (G, 4H, H)
  T* d_w_ih;        // (G, 4H)
  T* d_bias;        // (G, 4H)
  T* d_x;           // (G, T, B): dL/d input, processing order
  int64_t B, steps, M, H;
};

template <typename T, int HC>
void backward_lstm(const Backward<T>& a, int64_t g) {
  const int64_t H = HC ? HC : a.H, H4 = 4 * H, B = a.B, steps = a.steps, M = a.M;
  const int64_t mark = g % M, dir = g / M;
  const T* w_hh = a.w_hh + g * H4 * H;
  const T* w_ih = a.w_ih + g * H4;
  T* d_w_hh = a.d_w_hh + g * H4 * H;
  T* __restrict d_w_ih = a.d_w_ih + g * H4;
  T* __restrict d_bias = a.d_bias + g * H4;
  std::fill(d_w_hh, d_w_hh + H4 * H, T(0));
  std::fill(d_w_ih, d_w_ih + H4, T(0));
  std::fill(d_bias, d_bias + H4, T(0));
  std::vector<T> dh_buf(2 * B * H, T(0)), dc_buf(B * H, T(0)), zeros(H, T(0)), dh(H), dz_buf(B * H4);
  for (int64_t t = steps - 1; t >= 0; --t) {
    const int64_t bin = dir ? steps - 1 - t : t;
    const T* dh_in = dh_buf.data() + (t % 2) * B * H;  // dL/dh_t through step t+1 (zero at the end)
    T* dh_out = dh_buf.data() + ((t + 1) % 2) * B * H;  // dL/dh_{t-1} through step t
    for (int64_t b = 0; b < B; ++b) {
      const int64_t row = (g * steps + t) * B + b;
      const T* __restrict z = a.gates + row * H4;
      const T* __restrict tc = a.tanh_c + row * H;
      const T* __restrict cp = t > 0 ? a.cells + (row - B) * H : zeros.data();
      const T* __restrict up = a.grad + ((b * M + mark) * steps + bin) * 2 * H + dir * H;
      const T* __restrict dhr = dh_in + b * H;
      T* __restrict dc = dc_buf.data() + b * H;
      T* __restrict dz = dz_buf.data() + b * H4;
      T* __restrict dhv = dh.data();
#pragma omp simd
      for (int64_t k = 0; k < H; ++k) dhv[k] = up[k] + dhr[k];  // through the output and step t+1
#pragma omp simd
      for (int64_t k = 0; k < H; ++k) {  // dc: through h = o tanh(c) and through c_{t+1}
        const T o = z[3 * H + k];
        dc[k] += dhv[k] * o * (T(1) - tc[k] * tc[k]);
      }
#pragma omp simd
      for (int64_t k = 0; k < H; ++k) {
        const T i = z[k], f = z[H + k], gg = z[2 * H + k], o = z[3 * H + k];
        dz[k] = dc[k] * gg * i * (T(1) - i);
        dz[H + k] = dc[k] * cp[k] * f * (T(1) - f);
        dz[2 * H + k] = dc[k] * i * (T(1) - gg * gg);
        dz[3 * H + k] = dhv[k] * tc[k] * o * (T(1) - o);
      }
#pragma omp simd
      for (int64_t k = 0; k < H; ++k) dc[k] *= z[H + k];  // to c_{t-1}
      const T xv = a.x[(b * steps + bin) * M + mark];
#pragma omp simd
      for (int64_t j = 0; j < H4; ++j) {
        d_w_ih[j] += dz[j] * xv;
        d_bias[j] += dz[j];
      }
      a.d_x[row] = dot<T, HC>(dz, w_ih, H4);
    }
    // h_{t-1} = 0 at t = 0: no gradient flows to it and no weight gradient comes from the first step
    if (t > 0) hidden_grad<T, HC>(dh_out, dz_buf.data(), w_hh, B, H);
    if (t > 0) weight_grad<T, HC>(d_w_hh, dz_buf.data(), a.states + (g * steps + t - 1) * B * H, B, H);
  }
}

template <typename T, typename F16, typename F32, typename F64, typename F0>
void by_hidden(int64_t h, const F16& f16, const F32& f32, const F64& f64, const F0& f0) {
  if (h == 16) f16();
  else if (h == 32) f32();
  else if (h == 64) f64();
  else f0();
}

void check(const at::Tensor& t, const char* name, at::ScalarType dtype) {
  TORCH_CHECK(t.device().is_cpu(), name, " must be on the CPU");
  TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
  TORCH_CHECK(t.scalar_type() == dtype, name, " has dtype ", t.scalar_type(), ", expected ", dtype);
}

template <typename T, int HC>
void forward_all(const Forward<T>& a, int64_t count) {
  for_each_lstm(count, [&a](int64_t g) { forward_lstm<T, HC>(a, g); });
}

template <typename T, int HC>
void backward_all(const Backward<T>& a, int64_t count) {
  for_each_lstm(count, [&a](int64_t g) { backward_lstm<T, HC>(a, g); });
}

// x (B, T, M); w_t (G, H, 4H); w_ih, bias (G, 4H). Returns out (B, M, T, 2H) and, when `store`,
// gates (G, T, B, 4H), cells, tanh_c and states (G, T, B, H).
std::vector<at::Tensor> forward(const at::Tensor& x, const at::Tensor& w_t, const at::Tensor& w_ih,
                                const at::Tensor& bias, bool store) {
  const auto dtype = x.scalar_type();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble, "x must be float32 or float64");
  check(x, "x", dtype);
  check(w_t, "w_t", dtype);
  check(w_ih, "w_ih", dtype);
  check(bias, "bias", dtype);
  TORCH_CHECK(x.dim() == 3 && w_t.dim() == 3, "x must be (batch, bins, marks), w_t (2M, H, 4H)");
  const int64_t B = x.size(0), steps = x.size(1), M = x.size(2), G = w_t.size(0), H = w_t.size(1);
  TORCH_CHECK(G == 2 * M && w_t.size(2) == 4 * H, "w_t must be (2M, H, 4H)");
  TORCH_CHECK(w_ih.numel() == G * 4 * H && bias.numel() == G * 4 * H, "w_ih and bias must be (2M, 4H)");
  auto opts = x.options();
  at::Tensor out = pooled_empty({B, M, steps, 2 * H}, opts);
  at::Tensor gates, cells, tanh_c, states;
  if (store) {
    gates = pooled_empty({G, steps, B, 4 * H}, opts);
    cells = pooled_empty({G, steps, B, H}, opts);
    tanh_c = pooled_empty({G, steps, B, H}, opts);
    states = pooled_empty({G, steps, B, H}, opts);
  }
  {
    AT_DISPATCH_FLOATING_TYPES(dtype, "hmviz_bilstm_forward", [&] {
      using T = scalar_t;
      Forward<T> a{x.data_ptr<T>(), w_t.data_ptr<T>(), w_ih.data_ptr<T>(), bias.data_ptr<T>(),
                   out.data_ptr<T>(),
                   store ? gates.data_ptr<T>() : nullptr, store ? cells.data_ptr<T>() : nullptr,
                   store ? tanh_c.data_ptr<T>() : nullptr, store ? states.data_ptr<T>() : nullptr,
                   B, steps, M, H};
      by_hidden<T>(
          H, [&] { forward_all<T, 16>(a, G); }, [&] { forward_all<T, 32>(a, G); },
          [&] { forward_all<T, 64>(a, G); }, [&] { forward_all<T, 0>(a, G); });
    });
  }
  if (store) return {out, gates, cells, tanh_c, states};
  return {out};
}

// grad (B, M, T, 2H); x (B, T, M); w_hh (G, 4H, H); w_ih (G, 4H); saved tensors from
// forward(store=true). Returns dL/dW_hh (G, 4H, H), dL/dw_ih (G, 4H), dL/dbias (G, 4H) and
// dL/dx per LSTM (G, T, B), processing order.
std::vector<at::Tensor> backward(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& w_hh,
                                 const at::Tensor& w_ih, const at::Tensor& gates, const at::Tensor& cells,
                                 const at::Tensor& tanh_c, const at::Tensor& states) {
  const auto dtype = grad.scalar_type();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble, "grad must be float32 or float64");
  check(grad, "grad", dtype);
  check(x, "x", dtype);
  check(w_hh, "w_hh", dtype);
  check(w_ih, "w_ih", dtype);
  check(gates, "gates", dtype);
  check(cells, "cells", dtype);
  check(tanh_c, "tanh_c", dtype);
  check(states, "states", dtype);
  const int64_t B = grad.size(0), M = grad.size(1), steps = grad.size(2), G = w_hh.size(0), H = w_hh.size(2);
  TORCH_CHECK(G == 2 * M && w_hh.size(1) == 4 * H && grad.size(3) == 2 * H, "shapes do not match");
  TORCH_CHECK(x.numel() == B * steps * M && w_ih.numel() == G * 4 * H, "x or w_ih does not match");
  TORCH_CHECK(gates.numel() == G * steps * B * 4 * H && cells.numel() == G * steps * B * H &&
                  tanh_c.numel() == cells.numel() && states.numel() == cells.numel(),
              "saved tensors do not match the gradient's shape");
  auto opts = grad.options();
  at::Tensor d_w_hh = at::empty({G, 4 * H, H}, opts);
  at::Tensor d_w_ih = at::empty({G, 4 * H}, opts);
  at::Tensor d_bias = at::empty({G, 4 * H}, opts);
  at::Tensor d_x = at::empty({G, steps, B}, opts);
  {
    AT_DISPATCH_FLOATING_TYPES(dtype, "hmviz_bilstm_backward", [&] {
      using T = scalar_t;
      Backward<T> a{grad.data_ptr<T>(), x.data_ptr<T>(), w_hh.data_ptr<T>(), w_ih.data_ptr<T>(),
                    gates.data_ptr<T>(), cells.data_ptr<T>(), tanh_c.data_ptr<T>(), states.data_ptr<T>(),
                    d_w_hh.data_ptr<T>(), d_w_ih.data_ptr<T>(), d_bias.data_ptr<T>(), d_x.data_ptr<T>(),
                    B, steps, M, H};
      by_hidden<T>(
          H, [&] { backward_all<T, 16>(a, G); }, [&] { backward_all<T, 32>(a, G); },
          [&] { backward_all<T, 64>(a, G); }, [&] { backward_all<T, 0>(a, G); });
    });
  }
  return {d_w_hh, d_w_ih, d_bias, d_x};
}

// -- attention pooling per group (AttentiveChrome's bin level, one context vector per mark) -------
//
// states (B, G, L, D), context (G, D): score_t = s_t . c_g, alpha = softmax_t(score), pooled =
// sum_t alpha_t s_t. One pass over each gene's (L, D) block while it is in cache, instead of eager
// PyTorch's batched matrix-vector products and the extra passes of their backward.

template <typename T>
void attention_forward_block(const T* __restrict s, const T* __restrict c, T* __restrict pooled,
                             T* __restrict weights, int64_t L, int64_t D) {
  T top = -std::numeric_limits<T>::infinity();
  for (int64_t t = 0; t < L; ++t) {
    T score = 0;
    const T* __restrict st = s + t * D;
#pragma omp simd reduction(+ : score)
    for (int64_t d = 0; d < D; ++d) score += st[d] * c[d];
    weights[t] = score;
    top = std::max(top, score);
  }
  T total = 0;
  for (int64_t t = 0; t < L; ++t) {
    weights[t] = std::exp(weights[t] - top);
    total += weights[t];
  }
  const T inv = T(1) / total;
  for (int64_t t = 0; t < L; ++t) weights[t] *= inv;
  for (int64_t d = 0; d < D; ++d) pooled[d] = 0;
  for (int64_t t = 0; t < L; ++t) {
    const T w = weights[t];
    const T* __restrict st = s + t * D;
#pragma omp simd
    for (int64_t d = 0; d < D; ++d) pooled[d] += w * st[d];
  }
}

// d_states_t = alpha_t dp + dscore_t c; d_c += sum_t dscore_t s_t, where dalpha_t = dw_t + s_t . dp
// and dscore_t = alpha_t (dalpha_t - sum_t' alpha_t' dalpha_t').
template <typename T>
void attention_backward_block(const T* __restrict s, const T* __restrict c, const T* __restrict w,
                              const T* __restrict dp, const T* __restrict dw, T* __restrict ds,
                              T* __restrict dc, T* __restrict scratch, int64_t L, int64_t D) {
  T mean = 0;
  for (int64_t t = 0; t < L; ++t) {
    T da = dw[t];
    const T* __restrict st = s + t * D;
#pragma omp simd reduction(+ : da)
    for (int64_t d = 0; d < D; ++d) da += st[d] * dp[d];
    scratch[t] = da;
    mean += w[t] * da;
  }
  for (int64_t t = 0; t < L; ++t) {
    const T wt = w[t], dscore = wt * (scratch[t] - mean);
    const T* __restrict st = s + t * D;
    T* __restrict dst = ds + t * D;
#pragma omp simd
    for (int64_t d = 0; d < D; ++d) {
      dst[d] = wt * dp[d] + dscore * c[d];
      dc[d] += dscore * st[d];
    }
  }
}

void check_attention(const at::Tensor& states, const at::Tensor& context) {
  const auto dtype = states.scalar_type();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble, "states must be float32 or float64");
  check(states, "states", dtype);
  check(context, "context", dtype);
  TORCH_CHECK(states.dim() == 4 && context.dim() == 2 && states.size(1) == context.size(0) &&
                  states.size(3) == context.size(1),
              "states must be (batch, groups, L, D) and context (groups, D)");
}

// Returns pooled (B, G, D) and weights (B, G, L).
std::vector<at::Tensor> attention_forward(const at::Tensor& states, const at::Tensor& context) {
  check_attention(states, context);
  const int64_t B = states.size(0), G = states.size(1), L = states.size(2), D = states.size(3);
  at::Tensor pooled = at::empty({B, G, D}, states.options());
  at::Tensor weights = at::empty({B, G, L}, states.options());
  AT_DISPATCH_FLOATING_TYPES(states.scalar_type(), "hmviz_attention_forward", [&] {
    using T = scalar_t;
    const T* s = states.data_ptr<T>();
    const T* c = context.data_ptr<T>();
    T* p = pooled.data_ptr<T>();
    T* w = weights.data_ptr<T>();
    at::parallel_for(0, B * G, 16, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i)
        attention_forward_block<T>(s + i * L * D, c + (i % G) * D, p + i * D, w + i * L, L, D);
    });
  });
  return {pooled, weights};
}

// Returns d_states (B, G, L, D) and d_context (G, D). The context gradient is summed per fixed
// chunk of genes and then over chunks in order, so it does not depend on the thread count.
std::vector<at::Tensor> attention_backward(const at::Tensor& d_pooled, const at::Tensor& d_weights,
                                           const at::Tensor& states, const at::Tensor& context,
                                           const at::Tensor& weights) {
  check_attention(states, context);
  const auto dtype = states.scalar_type();
  check(d_pooled, "d_pooled", dtype);
  check(d_weights, "d_weights", dtype);
  check(weights, "weights", dtype);
  const int64_t B = states.size(0), G = states.size(1), L = states.size(2), D = states.size(3);
  TORCH_CHECK(d_pooled.numel() == B * G * D && d_weights.numel() == B * G * L && weights.numel() == B * G * L,
              "gradients do not match the states' shape");
  constexpr int64_t kChunk = 8;  // genes per partial context gradient
  const int64_t chunks = (B + kChunk - 1) / kChunk;
  at::Tensor d_states = pooled_empty({B, G, L, D}, states.options());
  at::Tensor partial = at::zeros({chunks, G, D}, states.options());
  at::Tensor d_context = at::zeros({G, D}, states.options());
  AT_DISPATCH_FLOATING_TYPES(dtype, "hmviz_attention_backward", [&] {
    using T = scalar_t;
    const T* s = states.data_ptr<T>();
    const T* c = context.data_ptr<T>();
    const T* w = weights.data_ptr<T>();
    const T* dp = d_pooled.data_ptr<T>();
    const T* dw = d_weights.data_ptr<T>();
    T* ds = d_states.data_ptr<T>();
    T* part = partial.data_ptr<T>();
    at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
      std::vector<T> scratch(L);
      for (int64_t k = begin; k < end; ++k)
        for (int64_t b = k * kChunk; b < std::min(B, (k + 1) * kChunk); ++b)
          for (int64_t g = 0; g < G; ++g) {
            const int64_t i = b * G + g;
            attention_backward_block<T>(s + i * L * D, c + g * D, w + i * L, dp + i * D, dw + i * L,
                                        ds + i * L * D, part + (k * G + g) * D, scratch.data(), L, D);
          }
    });
    T* dc = d_context.data_ptr<T>();
    for (int64_t k = 0; k < chunks; ++k)
      for (int64_t j = 0; j < G * D; ++j) dc[j] += part[k * G * D + j];
  });
  return {d_states, d_context};
}

}  // namespace

TORCH_LIBRARY(hmviz_bilstm, m) {
  m.def("forward(Tensor x, Tensor w_t, Tensor w_ih, Tensor bias, bool store) -> Tensor[]", &forward);
  m.def("backward(Tensor grad, Tensor x, Tensor w_hh, Tensor w_ih, Tensor gates, Tensor cells, Tensor tanh_c, "
        "Tensor states) -> Tensor[]",
        &backward);
  m.def("attention_forward(Tensor states, Tensor context) -> Tensor[]", &attention_forward);
  m.def("attention_backward(Tensor d_pooled, Tensor d_weights, Tensor states, Tensor context, Tensor weights) "
        "-> Tensor[]",
        &attention_backward);
}
