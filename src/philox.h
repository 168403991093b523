/* Philox4x32-10, the counter-based generator behind ebl's random numbers
   (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", 2011).
   Plain C that a CUDA kernel can include as is.

   The exact mapping, so that any device draws the same numbers:
   key = (seed & 0xffffffff, seed >> 32); block b is the counter
   (b & 0xffffffff, b >> 32, 0, 0) and gives four 32-bit words w0..w3.
   A draw of n elements starts at the global offset o (in blocks) and
   numbers elements in row-major order of the output, i = 0..n-1:
   - uniform float32, integers, bernoulli: element i takes word i % 4 of
     block o + i/4 (ceil(n/4) blocks);
     float32 uniform u = (w >> 8) * 2^-24 in [0, 1), value lo + (hi-lo) u
     (computed in double, rounded, kept below hi);
     integer lo + floor(w * (hi - lo) / 2^32) (hi - lo <= 2^32);
     bernoulli 1 when w < p * 2^32;
   - uniform float64: element i takes words 2(i%2), 2(i%2)+1 = (a, b) of
     block o + i/2 (ceil(n/2) blocks), u = ((a << 21) | (b >> 11)) 2^-53;
   - normal float32 (Box-Muller): elements 2j and 2j+1 take words
     (a, b) = 2(j%2), 2(j%2)+1 of block o + j/2 (ceil(n/4) blocks),
     u1 = (a + 1) 2^-32 in (0, 1], u2 = b 2^-32, r = sqrt(-2 ln u1),
     z(2j) = r cos(2 pi u2), z(2j+1) = r sin(2 pi u2), in double, then
     mean + std z rounded to float (an odd last element drops the sine);
   - normal float64: elements 2j, 2j+1 take block o + j (ceil(n/2)
     blocks), u1 = (m(w0, w1) + 1) 2^-53, u2 = m(w2, w3) 2^-53 with m the
     53-bit value of the float64 uniform, then as above.
   After a draw the offset advances by the blocks it used. */
#ifndef EBL_PHILOX_H
#define EBL_PHILOX_H

#include <stdint.h>

/* The functions below compile for the CPU and, under nvcc, for the
   GPU too: one source for both devices' numbers. */
#ifdef __CUDACC__
#define EBL_PHILOX_FN static inline __host__ __device__
#else
#define EBL_PHILOX_FN static inline
#endif

#define EBL_PHILOX_M0 0xD2511F53u
#define EBL_PHILOX_M1 0xCD9E8D57u
#define EBL_PHILOX_W0 0x9E3779B9u
#define EBL_PHILOX_W1 0xBB67AE85u

/* One round: two 32x32->64 products mixed with the key. */
EBL_PHILOX_FN void ebl_philox_round(uint32_t c[4], const uint32_t k[2]) {
  uint64_t p0 = (uint64_t)EBL_PHILOX_M0 * c[0];
  uint64_t p1 = (uint64_t)EBL_PHILOX_M1 * c[2];
  uint32_t c1 = c[1], c3 = c[3];
  c[0] = (uint32_t)(p1 >> 32) ^ c1 ^ k[0];
  c[1] = (uint32_t)p1;
  c[2] = (uint32_t)(p0 >> 32) ^ c3 ^ k[1];
  c[3] = (uint32_t)p0;
}

/* Ten rounds on counter ctr with key; the key is bumped between rounds
   by the Weyl constants. Writes four words to out. */
EBL_PHILOX_FN void ebl_philox4x32_10(const uint32_t ctr[4],
                                     const uint32_t key[2],
                                     uint32_t out[4]) {
  uint32_t c[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
  uint32_t k[2] = {key[0], key[1]};
  for (int r = 0; r < 10; r++) {
    if (r > 0) {
      k[0] += EBL_PHILOX_W0;
      k[1] += EBL_PHILOX_W1;
    }
    ebl_philox_round(c, k);
  }
  for (int i = 0; i < 4; i++) out[i] = c[i];
}

/* The four words of block b under seed. */
EBL_PHILOX_FN void ebl_philox_block(uint64_t seed, uint64_t b,
                                    uint32_t out[4]) {
  uint32_t ctr[4] = {(uint32_t)b, (uint32_t)(b >> 32), 0, 0};
  uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  ebl_philox4x32_10(ctr, key, out);
}

/* 53-bit uniform in [0, 1) from words a, b. */
EBL_PHILOX_FN double ebl_philox_u53(uint32_t a, uint32_t b) {
  uint64_t m = ((uint64_t)a << 21) | (b >> 11);
  return (double)m * (1.0 / 9007199254740992.0);
}

#endif
