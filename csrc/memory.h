#pragma once
#include <cstddef>
#include <cstdlib>
#include <new>
#include <vector>

namespace mg {

// A growable buffer of cache-line-aligned memory, kept between calls: the kernels' per-thread
// packing memory (allocating and first-touching a few hundred KiB costs as much as a small
// product). OpenMP workers are long-lived threads, so each keeps its own as a thread_local.
// Its contents are not zeroed. The alignment matters to the AMX tile loads (an unaligned
// 64-byte tile row spans two cache lines) and to the vector loads.
template <typename T>
class AlignedScratch {
 public:
  T* get(size_t count) {
    if (count > capacity_) {
      std::free(data_);
      const size_t bytes = ((count * sizeof(T) + 63) / 64) * 64;
      data_ = static_cast<T*>(std::aligned_alloc(64, bytes));
      if (!data_) {
        capacity_ = 0;
        throw std::bad_alloc();
      }
      capacity_ = count;
    }
    return data_;
  }
  AlignedScratch() = default;
  AlignedScratch(const AlignedScratch&) = delete;
  AlignedScratch& operator=(const AlignedScratch&) = delete;
  ~AlignedScratch() { std::free(data_); }

 private:
  T* data_ = nullptr;
  size_t capacity_ = 0;
};

// std::vector's allocator for cache-line-aligned storage: the convolutions' buffers (packed AMX
// weights, whose 64-byte tile rows would each span two cache lines at malloc's 16-byte
// alignment; the float32 paths' padded images and packed kernels, for their vector loads).
template <typename T>
struct CacheLineAllocator {
  using value_type = T;
  CacheLineAllocator() = default;
  template <typename U>
  CacheLineAllocator(const CacheLineAllocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(64))); }
  void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t(64)); }
  template <typename U>
  bool operator==(const CacheLineAllocator<U>&) const { return true; }
  template <typename U>
  bool operator!=(const CacheLineAllocator<U>&) const { return false; }
};
template <typename T>
using AlignedVector = std::vector<T, CacheLineAllocator<T>>;

// Raises the C allocator's mmap and trim thresholds so large per-step arrays are recycled
// (see memory.cpp). Returns whether the tuning is active.
bool tune_allocator();
}  // namespace mg
