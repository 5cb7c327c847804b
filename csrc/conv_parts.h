// The pieces every convolution driver shares (conv.cpp's direct, channel-vectorised and GEMM
// paths, winograd.cpp): padding copies, bias sums, and the thread skeletons that keep a
// workspace failure inside the parallel region and gradient sums independent of the team.
#pragma once
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <type_traits>
#include <vector>

#include "conv.h"
#include "memory.h"
#include "parallel.h"

namespace mg {
namespace conv_parts {

inline int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

// A workspace that is written before it is read: unlike std::vector, resize() does not fill it
// (zeroing a few megabytes of transformed tiles per call cost more than some transforms).
// Cache-line aligned (memory.h), as the AMX tiles' 64-byte rows and the vector loads want:
// at malloc's 16-byte alignment the same layer ran up to 1.4x slower in some processes than in
// others, depending on where its buffers happened to land.
template <typename T>
class Scratch {
  static_assert(std::is_trivially_copyable_v<T>, "Scratch holds plain values, never constructed");

 public:
  void resize(int64_t n) {
    if (n > size_) {
      data_.reset(static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(64))));
      size_ = n;
    }
  }
  T* data() { return data_.get(); }

 private:
  struct Release {
    void operator()(T* p) const { ::operator delete(p, std::align_val_t(64)); }
  };
  std::unique_ptr<T, Release> data_;
  int64_t size_ = 0;
};

inline double conv_flop(const ConvShape& s) {
  return 2.0 * s.n * s.co * (s.ci / s.groups) * s.kh * s.kw * s.ho() * s.wo();
}

// Threads for a whole-batch loop: one per image at most, one for small problems.
inline int batch_team(const ConvShape& s) {
  return team_for(Work::conv, static_cast<int64_t>(std::min(conv_flop(s), 1e18)), s.n);
}

// dst (channels x rows_dst x cols_dst) = 0, then the image src (channels x rows x cols) copied
// in at (r0, c0).
template <typename T>
void place(const T* src, int64_t channels, int64_t rows, int64_t cols, T* dst, int64_t rows_dst,
           int64_t cols_dst, int64_t r0, int64_t c0) {
  std::fill(dst, dst + channels * rows_dst * cols_dst, T(0));
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t r = 0; r < rows; ++r)
      std::memcpy(dst + (c * rows_dst + r0 + r) * cols_dst + c0, src + (c * rows + r) * cols,
                  cols * sizeof(T));
}

// gb[c] += sum of plane c of gy. Sixteen running sums per channel: one sum would be a chain
// of dependent adds the compiler may not reorder (LeNet's conv1 spent a third of its
// backward pass here).
template <typename T>
void add_channel_sums(int64_t channels, int64_t plane, const T* gy, T* gb) {
  constexpr int kLanes = 16;
  for (int64_t c = 0; c < channels; ++c) {
    const T* g = gy + c * plane;
    T lanes[kLanes] = {};
    int64_t p = 0;
    for (; p + kLanes <= plane; p += kLanes)
      for (int l = 0; l < kLanes; ++l) lanes[l] += g[p + l];
    T sum = T(0);
    for (; p < plane; ++p) sum += g[p];
    for (int l = 0; l < kLanes; ++l) sum += lanes[l];
    gb[c] += sum;
  }
}

// Runs setup(t) and then share(t) on each of `team` threads. setup allocates the thread's
// buffers: if that throws (std::bad_alloc for a workspace larger than memory), the exception
// must not leave the parallel region (that would terminate the process); it is caught, no
// thread runs share, and it is rethrown here, where the binding turns it into a Python
// MemoryError. share holds the work-sharing loop (an orphaned `omp for` binds to this team).
template <typename Setup, typename Share>
void in_team(int team, Setup setup, Share share) {
  std::exception_ptr failed;
#pragma omp parallel num_threads(team)
  {
    const int t = omp_get_thread_num();
    try {
      setup(t);
    } catch (...) {
#pragma omp critical(mg_conv_setup_failed)
      if (!failed) failed = std::current_exception();
    }
#pragma omp barrier
    if (!failed) share(t);  // the same answer on every thread after the barrier
  }
  if (failed) std::rethrow_exception(failed);
}

// Runs body(thread, image) over the batch on `team` threads (static split, so every thread
// owns a fixed set of images), after setup(thread) on each thread (see in_team).
template <typename Setup, typename Body>
void over_images(int64_t n, int team, Setup setup, Body body) {
  if (team <= 1) {
    setup(0);
    for (int64_t i = 0; i < n; ++i) body(0, i);
    return;
  }
  in_team(team, setup, [&](int t) {
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; ++i) body(t, i);
  });
}

// The weight and bias gradients sum over the batch. For results that do not depend on the
// thread count, the images are cut into chunks that depend on the shape only; each chunk's
// sum goes into its thread's scratch, and the chunks' sums are added into the gradient in
// chunk order (`omp ordered`), so every team size adds the same numbers in the same order.
// The adds are one pass over the gradient per chunk: under 1% of the chunk's products.
template <typename T>
struct ChunkSums {
  int64_t gw_size, gb_size;
  std::vector<std::vector<T>> gw, gb;  // per thread: the current chunk's sums
  ChunkSums(int team, int64_t gw_size_, int64_t gb_size_)
      : gw_size(gw_size_), gb_size(gb_size_), gw(team), gb(team) {}
  void setup(int t) {
    gw[t].resize(gw_size);
    gb[t].resize(gb_size);
  }
  void clear(int t) {
    std::fill(gw[t].begin(), gw[t].end(), T(0));
    std::fill(gb[t].begin(), gb[t].end(), T(0));
  }
  void add_into(int t, T* gw_out, T* gb_out) const {
    for (int64_t i = 0; i < gw_size; ++i) gw_out[i] += gw[t][i];
    for (int64_t i = 0; i < gb_size; ++i) gb_out[i] += gb[t][i];
  }
};

// over_images for chunks whose sums must be added in chunk order: body(t, c) computes chunk
// c's sums into sums' scratch of thread t, then they are added into (gw_out, gb_out) after
// chunk c - 1's. Round-robin chunks (static, 1) keep the threads' waits for their turn short.
template <typename T, typename Setup, typename Body>
void over_chunks_summed(int64_t chunks, int team, Setup setup, Body body, ChunkSums<T>& sums,
                        T* gw_out, T* gb_out) {
  auto run = [&](int t, int64_t c) {
    sums.clear(t);
    body(t, c);
  };
  auto setup_both = [&](int t) {
    setup(t);
    sums.setup(t);
  };
  if (team <= 1) {
    setup_both(0);
    for (int64_t c = 0; c < chunks; ++c) {
      run(0, c);
      sums.add_into(0, gw_out, gb_out);
    }
    return;
  }
  in_team(team, setup_both, [&](int t) {
#pragma omp for schedule(static, 1) ordered
    for (int64_t c = 0; c < chunks; ++c) {
      run(t, c);
#pragma omp ordered
      sums.add_into(t, gw_out, gb_out);
    }
  });
}

}  // namespace conv_parts
}  // namespace mg
