#pragma once

namespace mg {
// Raises the C allocator's mmap and trim thresholds so large per-step arrays are recycled
// (see memory.cpp). Returns whether the tuning is active.
bool tune_allocator();
}  // namespace mg
