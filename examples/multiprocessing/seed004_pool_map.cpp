/// Seed 004, "Option 3: Multiprocessing for CPU", translated line by line from Python.
///
///     from multiprocessing import Pool
///
///     def cpu_bound(num):
///         return sum(i*i for i in range(num))
///
///     def find_sums(nums):
///         with Pool() as pool:
///             pool.map(cpu_bound, nums)
///
///     nums = [5000000+x for x in range(20)]
///     find_sums(nums)  # Takes 2.5 secs
///
/// The numbers here are 500,000 + x (a tenth of the tutorial's) to keep CI fast; the sums are
/// Python's exactly (128-bit, no overflow), checked against the closed form.
#include <chrono>
#include <iostream>
#include <vector>

#include <concur/multiprocessing.hpp>

namespace mp = concur::multiprocessing;

__extension__ typedef unsigned __int128 u128;

/// Python's ints do not overflow: the sum travels back as two 64-bit halves.
struct Sum {
  unsigned long long hi, lo;
};

Sum cpu_bound(long num) {
  u128 s = 0;
  for (long i = 0; i < num; ++i) s += static_cast<u128>(i) * static_cast<u128>(i);
  return Sum{static_cast<unsigned long long>(s >> 64), static_cast<unsigned long long>(s)};
}

std::vector<Sum> find_sums(const std::vector<long>& nums) {
  mp::Pool pool;  // with Pool() as pool:  (cpu_count() worker processes)
  return pool.map(cpu_bound, nums);
}

int main() {
  std::vector<long> nums;
  for (long x = 0; x < 20; ++x) nums.push_back(500000 + x);  // [5000000+x for x in range(20)]
  auto start = std::chrono::steady_clock::now();
  std::vector<Sum> sums = find_sums(nums);
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  bool right = sums.size() == nums.size();
  for (std::size_t i = 0; right && i < nums.size(); ++i) {
    u128 n = static_cast<u128>(nums[i]);
    u128 expected = (n - 1) * n * (2 * n - 1) / 6;
    u128 got = (static_cast<u128>(sums[i].hi) << 64) | sums[i].lo;
    right = got == expected;
  }
  std::cout << "Computed " << sums.size() << " sums in " << took.count() << " s on " << mp::cpu_count()
            << " worker processes" << (right ? "" : " - WRONG") << "\n";
  return right ? 0 : 1;
}
