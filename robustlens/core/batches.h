// The one way to walk N items in batches: for (const auto [begin, end] : batches(n, batch_size)) { ... }
// visits [0, b), [b, 2b), ... [kb, n): every item once, in order, no batch empty or larger than batch_size.
#pragma once

#include "robustlens/core/error.h"

#include <algorithm>
#include <cstdint>
#include <iterator>

namespace robustlens {

/// Items [begin, end) of one batch.
struct Batch {
  std::int64_t begin = 0, end = 0;
  std::int64_t size() const { return end - begin; }
};

/// The batches of `count` items; batch_size must be >= 1.
class Batches {
 public:
  class Iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Batch;
    using difference_type = std::ptrdiff_t;
    using pointer = const Batch*;
    using reference = Batch;

    Iterator(std::int64_t begin, std::int64_t count, std::int64_t batch_size)
        : begin_(begin), count_(count), batch_size_(batch_size) {}
    Batch operator*() const { return {begin_, std::min(begin_ + batch_size_, count_)}; }
    Iterator& operator++() {
      begin_ = std::min(begin_ + batch_size_, count_);
      return *this;
    }
    bool operator!=(const Iterator& other) const { return begin_ != other.begin_; }
    bool operator==(const Iterator& other) const { return begin_ == other.begin_; }

   private:
    std::int64_t begin_, count_, batch_size_;
  };

  Batches(std::int64_t count, std::int64_t batch_size)
      : count_(std::max<std::int64_t>(count, 0)), batch_size_(batch_size) {
    RL_CHECK(batch_size >= 1, "batch size must be >= 1, got ", batch_size);
  }
  Iterator begin() const { return {0, count_, batch_size_}; }
  Iterator end() const { return {count_, count_, batch_size_}; }

 private:
  std::int64_t count_, batch_size_;
};

inline Batches batches(std::int64_t count, std::int64_t batch_size) { return {count, batch_size}; }

}  // namespace robustlens
