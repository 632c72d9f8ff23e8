/* era_tools._sha256: batch SHA-256 over 64-byte inputs for SSZ merkleization.
 *
 * A 64-byte input is exactly one message block plus one constant padding block (whose message
 * schedule is computed once), so each hash is two compressions with no per-call allocation.
 * Hash paths (HashPath below), every one the CPU has self-tested against OpenSSL at import and
 * timed on a short batch, the fastest used:
 *   openssl      OpenSSL's block function (SHA256_Transform), one input at a time
 *   sha-ni-x1/x2/x4/x8   the x86 SHA extensions, 1, 2, 4 or 8 inputs interleaved (the
 *                rounds of one input are latency-bound)
 *   avx2-x8      8 inputs, one per 32-bit lane of a YMM register
 *   avx512-x16   16 inputs, one per 32-bit lane of a ZMM register
 * ERA_TOOLS_SHA256_PATH=<name> forces a path; ERA_TOOLS_NO_SHANI / _NO_AVX2 / _NO_AVX512 take
 * paths out (to measure as on CPUs without them).  On a Zen 4 EPYC sha-ni-x4 is the fastest
 * (32 ns/hash, the SHA unit's throughput; avx512-x16 34, avx2-x8 76; BENCHMARKS.md, issue 15).
 * Tried and dropped: SHA-NI x4 fused with 4 lanes of VEX.128 SHA-256 in one stream (100
 * ns/hash: register spills).  Must not know SSZ types: ssz_root walks a
 * plan compiled by era_tools.ssz.fast.
 *
 * Entry points (all take bytes-like objects, all release the GIL on big inputs):
 *   hash_pairs(buf) -> bytes            len(buf) % 64 == 0; each 64-byte input -> 32-byte digest
 *   merkleize(chunks, depth) -> bytes   root of the chunks zero-padded to 2**depth leaves
 *   merkleize_each(buf, item_chunks, depth) -> bytes
 *       buf holds n items of item_chunks 32-byte chunks each; returns the n roots (n*32 bytes),
 *       each item merkleized to 2**depth leaves (item_chunks <= 2**depth)
 *   ssz_root(nodes, kids, foffs, data) -> bytes | None
 *       hash_tree_root of a whole serialized SSZ value walked from a compiled plan (below);
 *       with a path wider than one input the batched walker (many values of a type at once,
 *       trees hashed in lockstep through the path), else the per-value walker
 * Constants: PATH (in use), PATHS (usable here), BACKEND ("sha-ni" when lone hashes use
 * SHA-NI, else "openssl"), AVX512.  Benchmark/test hooks: _path(name) switches the path,
 * _tune(batched, lanes) the walker (and the path by width), _timings() the import timings,
 * _stats(on) counts hash calls by path, _chain(buf, n) times dependent hash chains.
 */
#include <stdlib.h>
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include <stdint.h>
#include <time.h>

#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/opensslv.h>
#include <openssl/sha.h>

/* Inputs of at least this many bytes are hashed with the GIL released. */
#define GIL_RELEASE_BYTES (64 * 256)
#define MAX_DEPTH 64

static unsigned char ZERO_HASHES[MAX_DEPTH + 1][32];

#if defined(OPENSSL_NO_DEPRECATED_3_0)
static void hash64_openssl(const unsigned char *in, unsigned char *out)
{
    SHA256(in, 64, out);
}
#else
/* Padding block of a 64-byte (512-bit) message: 0x80, zeros, bit length 512 big-endian. */
static const unsigned char PAD_BLOCK[64] = {
    0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x00,
};

static const SHA_LONG IV[8] = {
    0x6a09e667UL, 0xbb67ae85UL, 0x3c6ef372UL, 0xa54ff53aUL,
    0x510e527fUL, 0x9b05688cUL, 0x1f83d9abUL, 0x5be0cd19UL,
};

static void hash64_openssl(const unsigned char *in, unsigned char *out)
{
    SHA256_CTX c;
    int i;
    memcpy(c.h, IV, sizeof(IV));
    SHA256_Transform(&c, in);
    SHA256_Transform(&c, PAD_BLOCK);
    for (i = 0; i < 8; i++) {
        SHA_LONG v = c.h[i];
        out[4 * i] = (unsigned char)(v >> 24);
        out[4 * i + 1] = (unsigned char)(v >> 16);
        out[4 * i + 2] = (unsigned char)(v >> 8);
        out[4 * i + 3] = (unsigned char)v;
    }
}
#endif

/* ------------------------------------------------------------------------------------------
 * SHA-NI: where the CPU has the SHA extensions, a 64-byte input is hashed with the x86 SHA
 * instructions directly; the second (padding) block is the same for every input, so its
 * message schedule (W + K) is computed once at import.  Chosen at import after a self-test
 * against OpenSSL; OpenSSL's block function otherwise.
 */

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_SHANI_CODE 1

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};
static uint32_t PAD_WK[64] __attribute__((aligned(16))); /* W + K of the padding block */

__attribute__((target("sha,sse4.1,ssse3")))
static inline void shani_rounds(__m128i *s0, __m128i *s1, const __m128i *msgs)
{
    __m128i STATE0 = *s0, STATE1 = *s1, MSG;
    int i;
    for (i = 0; i < 16; i++) {
        MSG = msgs[i];
        STATE1 = _mm_sha256rnds2_epu32(STATE1, STATE0, MSG);
        MSG = _mm_shuffle_epi32(MSG, 0x0E);
        STATE0 = _mm_sha256rnds2_epu32(STATE0, STATE1, MSG);
    }
    *s0 = STATE0;
    *s1 = STATE1;
}

__attribute__((target("sha,sse4.1,ssse3")))
static void hash64_shani(const unsigned char *in, unsigned char *out)
{
    const __m128i MASK = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    /* initial state, arranged ABEF / CDGH */
    const __m128i ABEF0 = _mm_set_epi32(0x6a09e667, 0xbb67ae85, 0x510e527f, 0x9b05688c);
    const __m128i CDGH0 = _mm_set_epi32(0x3c6ef372, 0xa54ff53a, 0x1f83d9ab, 0x5be0cd19);
    __m128i W[16], MSGS[16], S0 = ABEF0, S1 = CDGH0, A0, C0, TMP;
    int i;
    for (i = 0; i < 4; i++)
        W[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(in + 16 * i)), MASK);
    for (i = 4; i < 16; i++)
        W[i] = _mm_sha256msg2_epu32(
            _mm_add_epi32(_mm_sha256msg1_epu32(W[i - 4], W[i - 3]),
                          _mm_alignr_epi8(W[i - 1], W[i - 2], 4)),
            W[i - 1]);
    for (i = 0; i < 16; i++)
        MSGS[i] = _mm_add_epi32(W[i], _mm_loadu_si128((const __m128i *)(K256 + 4 * i)));
    shani_rounds(&S0, &S1, MSGS);
    S0 = _mm_add_epi32(S0, ABEF0);
    S1 = _mm_add_epi32(S1, CDGH0);
    A0 = S0;
    C0 = S1;
    shani_rounds(&S0, &S1, (const __m128i *)PAD_WK);
    S0 = _mm_add_epi32(S0, A0);
    S1 = _mm_add_epi32(S1, C0);
    /* ABEF/CDGH -> ABCD/EFGH, big-endian bytes */
    TMP = _mm_shuffle_epi32(S0, 0x1B);       /* FEBA */
    S1 = _mm_shuffle_epi32(S1, 0xB1);        /* DCHG */
    S0 = _mm_blend_epi16(TMP, S1, 0xF0);     /* DCBA */
    S1 = _mm_alignr_epi8(S1, TMP, 8);        /* HGFE */
    _mm_storeu_si128((__m128i *)out, _mm_shuffle_epi8(S0, MASK)); /* per-word byte swap */
    _mm_storeu_si128((__m128i *)(out + 16), _mm_shuffle_epi8(S1, MASK));
}

/* Two independent inputs interleaved (the SHA rounds are latency-bound). */
__attribute__((target("sha,sse4.1,ssse3")))
static void hash64x2_shani(const unsigned char *in0, const unsigned char *in1,
                           unsigned char *out0, unsigned char *out1)
{
    const __m128i MASK = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    const __m128i ABEF0 = _mm_set_epi32(0x6a09e667, 0xbb67ae85, 0x510e527f, 0x9b05688c);
    const __m128i CDGH0 = _mm_set_epi32(0x3c6ef372, 0xa54ff53a, 0x1f83d9ab, 0x5be0cd19);
    __m128i W[16], V[16], S0 = ABEF0, S1 = CDGH0, T0 = ABEF0, T1 = CDGH0, M, N, A0, C0, B0, D0;
    __m128i TMP;
    int i;
    for (i = 0; i < 4; i++) {
        W[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(in0 + 16 * i)), MASK);
        V[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(in1 + 16 * i)), MASK);
    }
    for (i = 0; i < 16; i++) {
        __m128i k = _mm_loadu_si128((const __m128i *)(K256 + 4 * i));
        if (i >= 4) {
            W[i] = _mm_sha256msg2_epu32(
                _mm_add_epi32(_mm_sha256msg1_epu32(W[i - 4], W[i - 3]),
                              _mm_alignr_epi8(W[i - 1], W[i - 2], 4)), W[i - 1]);
            V[i] = _mm_sha256msg2_epu32(
                _mm_add_epi32(_mm_sha256msg1_epu32(V[i - 4], V[i - 3]),
                              _mm_alignr_epi8(V[i - 1], V[i - 2], 4)), V[i - 1]);
        }
        M = _mm_add_epi32(W[i], k);
        N = _mm_add_epi32(V[i], k);
        S1 = _mm_sha256rnds2_epu32(S1, S0, M);
        T1 = _mm_sha256rnds2_epu32(T1, T0, N);
        M = _mm_shuffle_epi32(M, 0x0E);
        N = _mm_shuffle_epi32(N, 0x0E);
        S0 = _mm_sha256rnds2_epu32(S0, S1, M);
        T0 = _mm_sha256rnds2_epu32(T0, T1, N);
    }
    S0 = _mm_add_epi32(S0, ABEF0);
    S1 = _mm_add_epi32(S1, CDGH0);
    T0 = _mm_add_epi32(T0, ABEF0);
    T1 = _mm_add_epi32(T1, CDGH0);
    A0 = S0; C0 = S1; B0 = T0; D0 = T1;
    for (i = 0; i < 16; i++) {
        M = _mm_load_si128((const __m128i *)(PAD_WK + 4 * i));
        S1 = _mm_sha256rnds2_epu32(S1, S0, M);
        T1 = _mm_sha256rnds2_epu32(T1, T0, M);
        M = _mm_shuffle_epi32(M, 0x0E);
        S0 = _mm_sha256rnds2_epu32(S0, S1, M);
        T0 = _mm_sha256rnds2_epu32(T0, T1, M);
    }
    S0 = _mm_add_epi32(S0, A0);
    S1 = _mm_add_epi32(S1, C0);
    T0 = _mm_add_epi32(T0, B0);
    T1 = _mm_add_epi32(T1, D0);
    TMP = _mm_shuffle_epi32(S0, 0x1B);
    S1 = _mm_shuffle_epi32(S1, 0xB1);
    S0 = _mm_blend_epi16(TMP, S1, 0xF0);
    S1 = _mm_alignr_epi8(S1, TMP, 8);
    TMP = _mm_shuffle_epi32(T0, 0x1B);
    T1 = _mm_shuffle_epi32(T1, 0xB1);
    T0 = _mm_blend_epi16(TMP, T1, 0xF0);
    T1 = _mm_alignr_epi8(T1, TMP, 8);
    _mm_storeu_si128((__m128i *)out0, _mm_shuffle_epi8(S0, MASK));
    _mm_storeu_si128((__m128i *)(out0 + 16), _mm_shuffle_epi8(S1, MASK));
    _mm_storeu_si128((__m128i *)out1, _mm_shuffle_epi8(T0, MASK));
    _mm_storeu_si128((__m128i *)(out1 + 16), _mm_shuffle_epi8(T1, MASK));
}

static int cpu_has_shani(void)
{
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSE4_1) || !(c & bit_SSSE3))
        return 0;
    if (__get_cpuid_max(0, NULL) < 7)
        return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b >> 29) & 1;
}

/* ------------------------------------------------------------------------------------------
 * AVX-512: sixteen independent 64-byte inputs hashed at once, one input per 32-bit lane of a
 * ZMM register (plain SHA-256 rounds on vectors: vprord for the rotations, vpternlogd for
 * Ch/Maj and the three-way xors).  The 16 inputs are transposed into 16 message-word vectors,
 * the first block runs 64 rounds with its schedule, the padding block runs 64 rounds on the
 * precomputed PAD_WK broadcast (no schedule), and the 8 state vectors are transposed back.
 * Chosen at import by cpuid (AVX512F + AVX512BW, ZMM state enabled by the OS per xgetbv) after a
 * self-test against OpenSSL; ERA_TOOLS_NO_AVX512 disables it.  On the Xeon it was measured on
 * (BENCHMARKS.md) ~34 ns/hash against ~70-80 for the SHA-NI pairs.  Tried and dropped: fusing
 * 16 AVX-512 lanes with a SHA-NI pair in one instruction stream (18 inputs per call) ran at
 * ~1,250 ns/hash, most likely because the SHA instructions exist only in legacy SSE encoding
 * and SSE code run with dirty upper ZMM state is penalized.  GCC emits vzeroupper on leaving
 * hash64x16_avx512, so the SHA-NI code after it runs at full speed.
 */
#define AVX512_TARGET __attribute__((target("avx512f,avx512bw")))

#define V16_ROUND(a, b, c, d, e, f, g, h, wk)                                                    \
    do {                                                                                         \
        __m512i t1_ = _mm512_add_epi32(                                                          \
            _mm512_add_epi32(h, (wk)),                                                           \
            _mm512_add_epi32(                                                                    \
                _mm512_ternarylogic_epi32(_mm512_ror_epi32(e, 6), _mm512_ror_epi32(e, 11),       \
                                          _mm512_ror_epi32(e, 25), 0x96),                        \
                _mm512_ternarylogic_epi32(e, f, g, 0xCA)));                                      \
        __m512i t2_ = _mm512_add_epi32(                                                          \
            _mm512_ternarylogic_epi32(_mm512_ror_epi32(a, 2), _mm512_ror_epi32(a, 13),           \
                                      _mm512_ror_epi32(a, 22), 0x96),                            \
            _mm512_ternarylogic_epi32(a, b, c, 0xE8));                                           \
        d = _mm512_add_epi32(d, t1_);                                                            \
        h = _mm512_add_epi32(t1_, t2_);                                                          \
    } while (0)

/* Eight rounds from round r: the register names rotate, so after eight they are back. */
#define V16_ROUND8(WK, r)                                                                        \
    do {                                                                                         \
        V16_ROUND(A, B, C, D, E, F, G, H, WK(r));                                                \
        V16_ROUND(H, A, B, C, D, E, F, G, WK(r + 1));                                            \
        V16_ROUND(G, H, A, B, C, D, E, F, WK(r + 2));                                            \
        V16_ROUND(F, G, H, A, B, C, D, E, WK(r + 3));                                            \
        V16_ROUND(E, F, G, H, A, B, C, D, WK(r + 4));                                            \
        V16_ROUND(D, E, F, G, H, A, B, C, WK(r + 5));                                            \
        V16_ROUND(C, D, E, F, G, H, A, B, WK(r + 6));                                            \
        V16_ROUND(B, C, D, E, F, G, H, A, WK(r + 7));                                            \
    } while (0)

/* W[t] for t >= 16 (ring of 16), then W[t] + K[t]. */
#define V16_SCHED(t)                                                                             \
    (W[(t) & 15] = _mm512_add_epi32(                                                             \
         _mm512_add_epi32(W[(t) & 15], W[((t) - 7) & 15]),                                       \
         _mm512_add_epi32(                                                                       \
             _mm512_ternarylogic_epi32(_mm512_ror_epi32(W[((t) - 15) & 15], 7),                  \
                                       _mm512_ror_epi32(W[((t) - 15) & 15], 18),                 \
                                       _mm512_srli_epi32(W[((t) - 15) & 15], 3), 0x96),          \
             _mm512_ternarylogic_epi32(_mm512_ror_epi32(W[((t) - 2) & 15], 17),                  \
                                       _mm512_ror_epi32(W[((t) - 2) & 15], 19),                  \
                                       _mm512_srli_epi32(W[((t) - 2) & 15], 10), 0x96))))
#define V16_WK_FIRST(t) _mm512_add_epi32(W[t], _mm512_set1_epi32((int)kp[t]))
#define V16_WK_SCHED(t) _mm512_add_epi32(V16_SCHED(t), _mm512_set1_epi32((int)kp[t]))
#define V16_WK_PAD(t) _mm512_set1_epi32((int)PAD_WK[t])

/* in[l] -> out[l] for l < 16.  All inputs are read before any output is written, so an
 * output may overlap any input (in-place layers). */
AVX512_TARGET
static void hash64x16_avx512(const unsigned char *const *in, unsigned char *const *out)
{
    /* per 32-bit word byte swap (big-endian message words and digest) */
    const __m512i BSWAP = _mm512_set4_epi32(0x0c0d0e0f, 0x08090a0b, 0x04050607, 0x00010203);
    __m512i W[16], R[16], A, B, C, D, E, F, G, H, M[8];
    /* K read through an opaque pointer: an add with a broadcast memory operand (a load),
     * not a constant moved to a GPR and broadcast on a vector port */
    const uint32_t *kp = K256;
    int i, r;
    __asm__("" : "+r"(kp));
    for (i = 0; i < 16; i++)
        R[i] = _mm512_shuffle_epi8(_mm512_loadu_si512((const void *)in[i]), BSWAP);
    /* 16x16 transpose of 32-bit words: W[k] lane l = word k of input l */
    for (i = 0; i < 16; i += 4) {
        __m512i a = _mm512_unpacklo_epi32(R[i], R[i + 1]);
        __m512i b = _mm512_unpackhi_epi32(R[i], R[i + 1]);
        __m512i c = _mm512_unpacklo_epi32(R[i + 2], R[i + 3]);
        __m512i d = _mm512_unpackhi_epi32(R[i + 2], R[i + 3]);
        /* group i/4, word 4q+j of its four inputs in 128-bit chunk q of W[i + j] */
        W[i] = _mm512_unpacklo_epi64(a, c);
        W[i + 1] = _mm512_unpackhi_epi64(a, c);
        W[i + 2] = _mm512_unpacklo_epi64(b, d);
        W[i + 3] = _mm512_unpackhi_epi64(b, d);
    }
    for (r = 0; r < 4; r++) {
        __m512i f0 = _mm512_shuffle_i32x4(W[r], W[4 + r], 0x44);
        __m512i f1 = _mm512_shuffle_i32x4(W[r], W[4 + r], 0xEE);
        __m512i f2 = _mm512_shuffle_i32x4(W[8 + r], W[12 + r], 0x44);
        __m512i f3 = _mm512_shuffle_i32x4(W[8 + r], W[12 + r], 0xEE);
        R[r] = _mm512_shuffle_i32x4(f0, f2, 0x88);
        R[4 + r] = _mm512_shuffle_i32x4(f0, f2, 0xDD);
        R[8 + r] = _mm512_shuffle_i32x4(f1, f3, 0x88);
        R[12 + r] = _mm512_shuffle_i32x4(f1, f3, 0xDD);
    }
    for (i = 0; i < 16; i++)
        W[i] = R[i];

    A = _mm512_set1_epi32(0x6a09e667); B = _mm512_set1_epi32((int)0xbb67ae85);
    C = _mm512_set1_epi32(0x3c6ef372); D = _mm512_set1_epi32((int)0xa54ff53a);
    E = _mm512_set1_epi32(0x510e527f); F = _mm512_set1_epi32((int)0x9b05688c);
    G = _mm512_set1_epi32(0x1f83d9ab); H = _mm512_set1_epi32(0x5be0cd19);
    V16_ROUND8(V16_WK_FIRST, 0);
    V16_ROUND8(V16_WK_FIRST, 8);
    V16_ROUND8(V16_WK_SCHED, 16);
    V16_ROUND8(V16_WK_SCHED, 24);
    V16_ROUND8(V16_WK_SCHED, 32);
    V16_ROUND8(V16_WK_SCHED, 40);
    V16_ROUND8(V16_WK_SCHED, 48);
    V16_ROUND8(V16_WK_SCHED, 56);
    M[0] = A = _mm512_add_epi32(A, _mm512_set1_epi32(0x6a09e667));
    M[1] = B = _mm512_add_epi32(B, _mm512_set1_epi32((int)0xbb67ae85));
    M[2] = C = _mm512_add_epi32(C, _mm512_set1_epi32(0x3c6ef372));
    M[3] = D = _mm512_add_epi32(D, _mm512_set1_epi32((int)0xa54ff53a));
    M[4] = E = _mm512_add_epi32(E, _mm512_set1_epi32(0x510e527f));
    M[5] = F = _mm512_add_epi32(F, _mm512_set1_epi32((int)0x9b05688c));
    M[6] = G = _mm512_add_epi32(G, _mm512_set1_epi32(0x1f83d9ab));
    M[7] = H = _mm512_add_epi32(H, _mm512_set1_epi32(0x5be0cd19));
    V16_ROUND8(V16_WK_PAD, 0);
    V16_ROUND8(V16_WK_PAD, 8);
    V16_ROUND8(V16_WK_PAD, 16);
    V16_ROUND8(V16_WK_PAD, 24);
    V16_ROUND8(V16_WK_PAD, 32);
    V16_ROUND8(V16_WK_PAD, 40);
    V16_ROUND8(V16_WK_PAD, 48);
    V16_ROUND8(V16_WK_PAD, 56);
    M[0] = _mm512_shuffle_epi8(_mm512_add_epi32(A, M[0]), BSWAP);
    M[1] = _mm512_shuffle_epi8(_mm512_add_epi32(B, M[1]), BSWAP);
    M[2] = _mm512_shuffle_epi8(_mm512_add_epi32(C, M[2]), BSWAP);
    M[3] = _mm512_shuffle_epi8(_mm512_add_epi32(D, M[3]), BSWAP);
    M[4] = _mm512_shuffle_epi8(_mm512_add_epi32(E, M[4]), BSWAP);
    M[5] = _mm512_shuffle_epi8(_mm512_add_epi32(F, M[5]), BSWAP);
    M[6] = _mm512_shuffle_epi8(_mm512_add_epi32(G, M[6]), BSWAP);
    M[7] = _mm512_shuffle_epi8(_mm512_add_epi32(H, M[7]), BSWAP);
    /* 8x16 transpose back: R[r] (r < 4) holds words 0-3 of input 4q+r in 128-bit chunk q,
     * R[4 + r] words 4-7 */
    for (i = 0; i < 8; i += 4) {
        __m512i a = _mm512_unpacklo_epi32(M[i], M[i + 1]);
        __m512i b = _mm512_unpackhi_epi32(M[i], M[i + 1]);
        __m512i c = _mm512_unpacklo_epi32(M[i + 2], M[i + 3]);
        __m512i d = _mm512_unpackhi_epi32(M[i + 2], M[i + 3]);
        R[i] = _mm512_unpacklo_epi64(a, c);
        R[i + 1] = _mm512_unpackhi_epi64(a, c);
        R[i + 2] = _mm512_unpacklo_epi64(b, d);
        R[i + 3] = _mm512_unpackhi_epi64(b, d);
    }
    for (r = 0; r < 4; r++) {
        /* [lo.q0, hi.q0, lo.q1, hi.q1] and [lo.q2, hi.q2, lo.q3, hi.q3] */
        __m512i x = _mm512_shuffle_i32x4(R[r], R[4 + r], 0x44);
        __m512i z = _mm512_shuffle_i32x4(R[r], R[4 + r], 0xEE);
        W[r] = _mm512_shuffle_i32x4(x, x, 0xD8);
        W[4 + r] = _mm512_shuffle_i32x4(z, z, 0xD8);
    }
    for (r = 0; r < 4; r++) {
        _mm256_storeu_si256((__m256i *)out[r], _mm512_castsi512_si256(W[r]));
        _mm256_storeu_si256((__m256i *)out[4 + r], _mm512_extracti64x4_epi64(W[r], 1));
        _mm256_storeu_si256((__m256i *)out[8 + r], _mm512_castsi512_si256(W[4 + r]));
        _mm256_storeu_si256((__m256i *)out[12 + r], _mm512_extracti64x4_epi64(W[4 + r], 1));
    }
}

/* PAD_WK in plain C (the AVX-512 path needs it also where SHA-NI is off). */
static void pad_schedule(void)
{
    uint32_t w[64];
    int t;
    for (t = 0; t < 16; t++)
        w[t] = 0;
    w[0] = 0x80000000u;
    w[15] = 512;
#define ROR32(x, n) (((x) >> (n)) | ((x) << (32 - (n))))
    for (t = 16; t < 64; t++) {
        uint32_t a = w[t - 15], b = w[t - 2];
        w[t] = w[t - 16] + w[t - 7] + (ROR32(a, 7) ^ ROR32(a, 18) ^ (a >> 3)) +
               (ROR32(b, 17) ^ ROR32(b, 19) ^ (b >> 10));
    }
#undef ROR32
    for (t = 0; t < 64; t++)
        PAD_WK[t] = w[t] + K256[t];
}

static int cpu_has_avx512(void)
{
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE))
        return 0;
    if (__get_cpuid_max(0, NULL) < 7)
        return 0;
    __cpuid_count(7, 0, a, b, c, d);
    if (!(b & bit_AVX512F) || !(b & bit_AVX512BW))
        return 0;
    /* XCR0: SSE, AVX, opmask, ZMM_Hi256 and Hi16_ZMM state enabled by the OS */
    __asm__ volatile("xgetbv" : "=a"(a), "=d"(d) : "c"(0));
    return (a & 0xE6) == 0xE6;
}

/* ------------------------------------------------------------------------------------------
 * SHA-NI, N inputs interleaved (N = 4 or 8; the pair above is N = 2 written out): the
 * sha256rnds2 chain of one input is latency-bound, so N independent chains keep the SHA unit
 * busy where its latency is longer than its issue interval (AMD Zen: 4 cycles against 1-2).
 * Each input's message schedule lives in a ring of four vectors; every input is read before
 * any output is written (in-place layers).
 */
#define SHANI_TARGET __attribute__((target("sha,sse4.1,ssse3")))

static inline __attribute__((always_inline)) SHANI_TARGET void
shani_lanes(const unsigned char *const *in, unsigned char *const *out, const int N)
{
    const __m128i MASK = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    const __m128i ABEF0 = _mm_set_epi32(0x6a09e667, 0xbb67ae85, 0x510e527f, 0x9b05688c);
    const __m128i CDGH0 = _mm_set_epi32(0x3c6ef372, 0xa54ff53a, 0x1f83d9ab, 0x5be0cd19);
    __m128i W[8][4], S0[8], S1[8], A0[8], C0[8], M[8];
    int i, l;
#pragma GCC unroll 8
    for (l = 0; l < N; l++) {
        for (i = 0; i < 4; i++)
            W[l][i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(in[l] + 16 * i)), MASK);
        S0[l] = ABEF0;
        S1[l] = CDGH0;
    }
#pragma GCC unroll 16
    for (i = 0; i < 16; i++) {
        const __m128i k = _mm_loadu_si128((const __m128i *)(K256 + 4 * i));
#pragma GCC unroll 8
        for (l = 0; l < N; l++) {
            if (i >= 4) /* W[i] from W[i-4] (this slot), W[i-3], W[i-2], W[i-1] */
                W[l][i & 3] = _mm_sha256msg2_epu32(
                    _mm_add_epi32(_mm_sha256msg1_epu32(W[l][i & 3], W[l][(i + 1) & 3]),
                                  _mm_alignr_epi8(W[l][(i + 3) & 3], W[l][(i + 2) & 3], 4)),
                    W[l][(i + 3) & 3]);
            M[l] = _mm_add_epi32(W[l][i & 3], k);
            S1[l] = _mm_sha256rnds2_epu32(S1[l], S0[l], M[l]);
        }
#pragma GCC unroll 8
        for (l = 0; l < N; l++)
            S0[l] = _mm_sha256rnds2_epu32(S0[l], S1[l], _mm_shuffle_epi32(M[l], 0x0E));
    }
#pragma GCC unroll 8
    for (l = 0; l < N; l++) {
        A0[l] = S0[l] = _mm_add_epi32(S0[l], ABEF0);
        C0[l] = S1[l] = _mm_add_epi32(S1[l], CDGH0);
    }
#pragma GCC unroll 16
    for (i = 0; i < 16; i++) {
        const __m128i m0 = _mm_load_si128((const __m128i *)(PAD_WK + 4 * i));
        const __m128i m1 = _mm_shuffle_epi32(m0, 0x0E);
#pragma GCC unroll 8
        for (l = 0; l < N; l++)
            S1[l] = _mm_sha256rnds2_epu32(S1[l], S0[l], m0);
#pragma GCC unroll 8
        for (l = 0; l < N; l++)
            S0[l] = _mm_sha256rnds2_epu32(S0[l], S1[l], m1);
    }
#pragma GCC unroll 8
    for (l = 0; l < N; l++) {
        __m128i s0 = _mm_add_epi32(S0[l], A0[l]), s1 = _mm_add_epi32(S1[l], C0[l]);
        __m128i t = _mm_shuffle_epi32(s0, 0x1B); /* FEBA */
        s1 = _mm_shuffle_epi32(s1, 0xB1);         /* DCHG */
        s0 = _mm_blend_epi16(t, s1, 0xF0);        /* DCBA */
        s1 = _mm_alignr_epi8(s1, t, 8);           /* HGFE */
        _mm_storeu_si128((__m128i *)out[l], _mm_shuffle_epi8(s0, MASK));
        _mm_storeu_si128((__m128i *)(out[l] + 16), _mm_shuffle_epi8(s1, MASK));
    }
}

SHANI_TARGET static void hash64x4_shani(const unsigned char *const *in, unsigned char *const *out)
{
    shani_lanes(in, out, 4);
}

SHANI_TARGET static void hash64x8_shani(const unsigned char *const *in, unsigned char *const *out)
{
    shani_lanes(in, out, 8);
}

/* ------------------------------------------------------------------------------------------
 * AVX2: eight independent 64-byte inputs at once, one per 32-bit lane of a YMM register (the
 * AVX-512 path's structure on 256-bit vectors, without vprord/vpternlogd: rotations are two
 * shifts and an or, Ch and Maj three and four boolean operations).  For CPUs with AVX2 and
 * no SHA extensions (Intel before Ice Lake) and to measure against SHA-NI elsewhere.
 */
#define AVX2_TARGET __attribute__((target("avx2")))

#define Y_ROR(x, n) _mm256_or_si256(_mm256_srli_epi32(x, n), _mm256_slli_epi32(x, 32 - (n)))
#define Y_XOR3(a, b, c) _mm256_xor_si256(_mm256_xor_si256(a, b), c)
#define Y_ROUND(a, b, c, d, e, f, g, h, wk)                                                      \
    do {                                                                                         \
        __m256i t1_ = _mm256_add_epi32(                                                          \
            _mm256_add_epi32(h, (wk)),                                                           \
            _mm256_add_epi32(Y_XOR3(Y_ROR(e, 6), Y_ROR(e, 11), Y_ROR(e, 25)),                    \
                             _mm256_xor_si256(_mm256_and_si256(_mm256_xor_si256(f, g), e), g)));  \
        __m256i t2_ = _mm256_add_epi32(                                                          \
            Y_XOR3(Y_ROR(a, 2), Y_ROR(a, 13), Y_ROR(a, 22)),                                     \
            _mm256_or_si256(_mm256_and_si256(a, b), _mm256_and_si256(c, _mm256_or_si256(a, b)))); \
        d = _mm256_add_epi32(d, t1_);                                                            \
        h = _mm256_add_epi32(t1_, t2_);                                                          \
    } while (0)
#define Y_ROUND8(WK, r)                                                                          \
    do {                                                                                         \
        Y_ROUND(A, B, C, D, E, F, G, H, WK(r));                                                  \
        Y_ROUND(H, A, B, C, D, E, F, G, WK(r + 1));                                              \
        Y_ROUND(G, H, A, B, C, D, E, F, WK(r + 2));                                              \
        Y_ROUND(F, G, H, A, B, C, D, E, WK(r + 3));                                              \
        Y_ROUND(E, F, G, H, A, B, C, D, WK(r + 4));                                              \
        Y_ROUND(D, E, F, G, H, A, B, C, WK(r + 5));                                              \
        Y_ROUND(C, D, E, F, G, H, A, B, WK(r + 6));                                              \
        Y_ROUND(B, C, D, E, F, G, H, A, WK(r + 7));                                              \
    } while (0)
#define Y_SCHED(t)                                                                               \
    (W[(t) & 15] = _mm256_add_epi32(                                                             \
         _mm256_add_epi32(W[(t) & 15], W[((t) - 7) & 15]),                                       \
         _mm256_add_epi32(Y_XOR3(Y_ROR(W[((t) - 15) & 15], 7), Y_ROR(W[((t) - 15) & 15], 18),    \
                                 _mm256_srli_epi32(W[((t) - 15) & 15], 3)),                      \
                          Y_XOR3(Y_ROR(W[((t) - 2) & 15], 17), Y_ROR(W[((t) - 2) & 15], 19),     \
                                 _mm256_srli_epi32(W[((t) - 2) & 15], 10)))))
#define Y_WK_FIRST(t) _mm256_add_epi32(W[t], _mm256_set1_epi32((int)K256[t]))
#define Y_WK_SCHED(t) _mm256_add_epi32(Y_SCHED(t), _mm256_set1_epi32((int)K256[t]))
#define Y_WK_PAD(t) _mm256_set1_epi32((int)PAD_WK[t])

/* 8x8 transpose of 32-bit words: r[j] word k -> r[k] word j. */
AVX2_TARGET static inline void y_transpose8(__m256i *r)
{
    __m256i t[8], u[8];
    int i;
    for (i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (i = 0; i < 8; i += 4) {
        u[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]);
        u[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);
        u[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]);
        u[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    for (i = 0; i < 4; i++) {
        r[i] = _mm256_permute2x128_si256(u[i], u[i + 4], 0x20);
        r[i + 4] = _mm256_permute2x128_si256(u[i], u[i + 4], 0x31);
    }
}

AVX2_TARGET static void hash64x8_avx2(const unsigned char *const *in, unsigned char *const *out)
{
    const __m256i BSWAP = _mm256_set_epi32(0x0c0d0e0f, 0x08090a0b, 0x04050607, 0x00010203,
                                           0x0c0d0e0f, 0x08090a0b, 0x04050607, 0x00010203);
    __m256i W[16], A, B, C, D, E, F, G, H, M[8];
    int i;
    for (i = 0; i < 8; i++) {
        W[i] = _mm256_shuffle_epi8(_mm256_loadu_si256((const __m256i *)in[i]), BSWAP);
        W[8 + i] = _mm256_shuffle_epi8(_mm256_loadu_si256((const __m256i *)(in[i] + 32)), BSWAP);
    }
    y_transpose8(W);
    y_transpose8(W + 8);
    A = _mm256_set1_epi32(0x6a09e667); B = _mm256_set1_epi32((int)0xbb67ae85);
    C = _mm256_set1_epi32(0x3c6ef372); D = _mm256_set1_epi32((int)0xa54ff53a);
    E = _mm256_set1_epi32(0x510e527f); F = _mm256_set1_epi32((int)0x9b05688c);
    G = _mm256_set1_epi32(0x1f83d9ab); H = _mm256_set1_epi32(0x5be0cd19);
    Y_ROUND8(Y_WK_FIRST, 0);
    Y_ROUND8(Y_WK_FIRST, 8);
    Y_ROUND8(Y_WK_SCHED, 16);
    Y_ROUND8(Y_WK_SCHED, 24);
    Y_ROUND8(Y_WK_SCHED, 32);
    Y_ROUND8(Y_WK_SCHED, 40);
    Y_ROUND8(Y_WK_SCHED, 48);
    Y_ROUND8(Y_WK_SCHED, 56);
    M[0] = A = _mm256_add_epi32(A, _mm256_set1_epi32(0x6a09e667));
    M[1] = B = _mm256_add_epi32(B, _mm256_set1_epi32((int)0xbb67ae85));
    M[2] = C = _mm256_add_epi32(C, _mm256_set1_epi32(0x3c6ef372));
    M[3] = D = _mm256_add_epi32(D, _mm256_set1_epi32((int)0xa54ff53a));
    M[4] = E = _mm256_add_epi32(E, _mm256_set1_epi32(0x510e527f));
    M[5] = F = _mm256_add_epi32(F, _mm256_set1_epi32((int)0x9b05688c));
    M[6] = G = _mm256_add_epi32(G, _mm256_set1_epi32(0x1f83d9ab));
    M[7] = H = _mm256_add_epi32(H, _mm256_set1_epi32(0x5be0cd19));
    Y_ROUND8(Y_WK_PAD, 0);
    Y_ROUND8(Y_WK_PAD, 8);
    Y_ROUND8(Y_WK_PAD, 16);
    Y_ROUND8(Y_WK_PAD, 24);
    Y_ROUND8(Y_WK_PAD, 32);
    Y_ROUND8(Y_WK_PAD, 40);
    Y_ROUND8(Y_WK_PAD, 48);
    Y_ROUND8(Y_WK_PAD, 56);
    M[0] = _mm256_add_epi32(A, M[0]); M[1] = _mm256_add_epi32(B, M[1]);
    M[2] = _mm256_add_epi32(C, M[2]); M[3] = _mm256_add_epi32(D, M[3]);
    M[4] = _mm256_add_epi32(E, M[4]); M[5] = _mm256_add_epi32(F, M[5]);
    M[6] = _mm256_add_epi32(G, M[6]); M[7] = _mm256_add_epi32(H, M[7]);
    y_transpose8(M);
    for (i = 0; i < 8; i++)
        _mm256_storeu_si256((__m256i *)out[i], _mm256_shuffle_epi8(M[i], BSWAP));
}

static int cpu_has_avx2(void)
{
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE) || !(c & bit_AVX))
        return 0;
    if (__get_cpuid_max(0, NULL) < 7)
        return 0;
    __cpuid_count(7, 0, a, b, c, d);
    if (!(b & bit_AVX2))
        return 0;
    __asm__ volatile("xgetbv" : "=a"(a), "=d"(d) : "c"(0));
    return (a & 0x6) == 0x6; /* XMM and YMM state enabled by the OS */
}

static int cpu_has_avx(void)
{
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE) || !(c & bit_AVX))
        return 0;
    __asm__ volatile("xgetbv" : "=a"(a), "=d"(d) : "c"(0));
    return (a & 0x6) == 0x6;
}

/* vzeroupper before legacy-SSE SHA-NI code.  Code run earlier in the process (AVX kernels
 * without vzeroupper, glibc's EVEX string functions) can leave the upper halves of the vector
 * registers dirty; legacy-encoded SSE instructions then pay a merge penalty (measured on a
 * Zen 4 EPYC: SHA-NI x4 at 70-85 ns/hash after hashtree's AVX kernels against 32 clean). */
static int have_avx = 0;
__attribute__((target("avx"))) static void clean_upper_avx(void)
{
    _mm256_zeroupper();
}
#define CLEAN_UPPER() do { if (have_avx) clean_upper_avx(); } while (0)
#endif

static void hash64_openssl(const unsigned char *in, unsigned char *out);

#ifndef HAVE_SHANI_CODE
#define CLEAN_UPPER() do { } while (0)
#endif

/* ------------------------------------------------------------------------------------------
 * Hash paths.  A path hashes `width` independent inputs per call (all inputs read before any
 * output is written, so in-place layers are safe); the inputs left over when fewer than
 * `width` remain go through narrower SHA-NI groups (or one at a time).  Every path the CPU has
 * is self-tested against OpenSSL at import and timed on a short batch; the fastest is used
 * (ERA_TOOLS_SHA256_PATH=<name> forces one; ERA_TOOLS_NO_SHANI / _NO_AVX2 / _NO_AVX512 take
 * paths out).  _path(name) switches at run time for benchmarks and tests.
 */
typedef void (*group_fn)(const unsigned char *const *in, unsigned char *const *out);

static void g_openssl(const unsigned char *const *in, unsigned char *const *out)
{
    hash64_openssl(in[0], out[0]);
}

#ifdef HAVE_SHANI_CODE
static void g_shani1(const unsigned char *const *in, unsigned char *const *out)
{
    hash64_shani(in[0], out[0]);
}

static void g_shani2(const unsigned char *const *in, unsigned char *const *out)
{
    hash64x2_shani(in[0], in[1], out[0], out[1]); /* reads both inputs before writing */
}
#endif

enum { P_OPENSSL, P_SHANI1, P_SHANI2, P_SHANI4, P_SHANI8, P_AVX2, P_AVX512, NPATHS };

typedef struct {
    const char *name;
    int width;
    group_fn fn;
    int ok;       /* the CPU has it, not switched off, self-test passed */
    double ns;    /* ns per hash at import (hash_many of TIME_N inputs, best of rounds) */
} HashPath;

static HashPath paths[NPATHS] = {
    {"openssl", 1, g_openssl, 1, 0},
#ifdef HAVE_SHANI_CODE
    {"sha-ni-x1", 1, g_shani1, 0, 0},
    {"sha-ni-x2", 2, g_shani2, 0, 0},
    {"sha-ni-x4", 4, hash64x4_shani, 0, 0},
    {"sha-ni-x8", 8, hash64x8_shani, 0, 0},
    {"avx2-x8", 8, hash64x8_avx2, 0, 0},
    {"avx512-x16", 16, hash64x16_avx512, 0, 0},
#else
    {"sha-ni-x1", 1, NULL, 0, 0},
    {"sha-ni-x2", 2, NULL, 0, 0},
    {"sha-ni-x4", 4, NULL, 0, 0},
    {"sha-ni-x8", 8, NULL, 0, 0},
    {"avx2-x8", 8, NULL, 0, 0},
    {"avx512-x16", 16, NULL, 0, 0},
#endif
};

static int cur_path = P_OPENSSL;
static int single_shani = 0; /* lone hashes with SHA-NI (not when the openssl path is chosen) */
/* A partial group (spare lanes hash input 0 again into scratch) pays from this many inputs on;
 * set per path from the import timings (SHA-NI paths: never, their tails go through narrower
 * SHA-NI groups). */
static int min_partial = 1 << 30;

/* Hash counters for scripts/bench_hashing.py, only while _stats(True) is on (plain
 * increments: the bench counts from one thread): lone hashes, SHA-NI pair calls (a 4-wide
 * tail of the 8-wide SHA-NI path counts as two), calls of the current path when it is wider
 * than 2, spare lanes of partial groups. */
static int stats_on = 0;
static unsigned long long st_calls[4];
#define STAT(i) do { if (stats_on) st_calls[i]++; } while (0)

static void hash64(const unsigned char *in, unsigned char *out)
{
    STAT(0);
#ifdef HAVE_SHANI_CODE
    if (single_shani) {
        CLEAN_UPPER();
        hash64_shani(in, out);
        return;
    }
#endif
    hash64_openssl(in, out);
}

static void set_path(int p)
{
    cur_path = p;
    single_shani = paths[P_SHANI1].ok && p != P_OPENSSL;
    min_partial = 1 << 30;
    if (p == P_AVX2 || p == P_AVX512) {
        /* partial group of width w (cost ~ w * ns) against n hashes on the tail path */
        int tail = paths[P_SHANI2].ok ? P_SHANI2 : (single_shani ? P_SHANI1 : P_OPENSSL);
        double pay = paths[tail].ns > 0 && paths[p].ns > 0
                         ? paths[p].width * paths[p].ns / paths[tail].ns
                         : paths[p].width / 2.0;
        min_partial = (int)pay + 1;
        if (min_partial < 2)
            min_partial = 2;
    }
}

static void run_partial(const HashPath *hp, const unsigned char *const *in,
                        unsigned char *const *out, int n)
{
    const unsigned char *ins[16];
    unsigned char *outs[16], spare[32];
    int l;
    for (l = 0; l < hp->width; l++) {
        ins[l] = l < n ? in[l] : in[0];
        outs[l] = l < n ? out[l] : spare;
    }
    if (stats_on)
        st_calls[3] += (unsigned long long)(hp->width - n);
    STAT(2);
    hp->fn(ins, outs);
}

/* n independent jobs in[i] -> out[i], run in order through the current path (each group reads
 * its inputs before writing its outputs: an in-place layer queued in order is safe). */
static void run_jobs(const unsigned char *const *in, unsigned char *const *out, int n)
{
    const HashPath *hp = &paths[cur_path];
    int i = 0, w = hp->width;
    unsigned char tmp[32];
    if (single_shani)
        CLEAN_UPPER();
    if (w > 2) {
        for (; i + w <= n; i += w) {
            STAT(2);
            hp->fn(in + i, out + i);
        }
        if (n - i >= min_partial) {
            run_partial(hp, in + i, out + i, n - i);
            return;
        }
    }
#ifdef HAVE_SHANI_CODE
    if (cur_path == P_SHANI8 && n - i >= 4) {
        if (stats_on)
            st_calls[1] += 2; /* counted as two pairs (the counters count hashes per path) */
        hash64x4_shani(in + i, out + i);
        i += 4;
    }
    if (paths[P_SHANI2].ok && cur_path != P_OPENSSL && cur_path != P_SHANI1)
        for (; i + 1 < n; i += 2) {
            STAT(1);
            hash64x2_shani(in[i], in[i + 1], out[i], out[i + 1]);
        }
#endif
    for (; i < n; i++) {
        hash64(in[i], tmp); /* out[i] may overlap in[i] */
        memcpy(out[i], tmp, 32);
    }
}

/* A queue of independent 64-byte -> 32-byte hash jobs, run through run_jobs in the order
 * queued.  Jobs whose inputs are outputs of queued jobs must wait for jobs_flush(). */
#define JOBS_CAP 64
typedef struct {
    const unsigned char *in[JOBS_CAP];
    unsigned char *out[JOBS_CAP];
    int n;
} Jobs;

static void jobs_flush(Jobs *q)
{
    run_jobs(q->in, q->out, q->n);
    q->n = 0;
}

static inline void jobs_add(Jobs *q, const unsigned char *in, unsigned char *out)
{
    q->in[q->n] = in;
    q->out[q->n] = out;
    if (++q->n == JOBS_CAP)
        jobs_flush(q);
}

/* out may equal in (in-place layer hashing: output i is written after input 2i is read). */
static void hash_many(const unsigned char *in, unsigned char *out, Py_ssize_t n)
{
    const unsigned char *ins[JOBS_CAP];
    unsigned char *outs[JOBS_CAP];
    Py_ssize_t i = 0;
    int k;
    while (i < n) {
        for (k = 0; k < JOBS_CAP && i < n; k++, i++) {
            ins[k] = in + 64 * i;
            outs[k] = out + 32 * i;
        }
        run_jobs(ins, outs, k);
    }
}

/* ---- import: CPU features, self-tests against OpenSSL, timings ---------------------------- */

#ifdef HAVE_SHANI_CODE
/* A group path against OpenSSL on 8 rounds of inputs in three layouts: separate buffers with
 * the lanes in a scrambled order; in place, as layers are hashed (output l over the first half
 * of input l); packed, output l at 32 * l over inputs at 64 * l (hash_many(buf, buf)). */
static int selftest_group(group_fn fn, int w)
{
    unsigned char buf[17 * 64], want[16][32], got[17 * 64];
    const unsigned char *ins[16];
    unsigned char *outs[16];
    int i, j, mode, round, ok = 1;
    for (round = 0; round < 8 && ok; round++) {
        for (i = 0; i < 17 * 64; i++)
            buf[i] = (unsigned char)(i * 131 + round * 29 + (i >> 6) * 7 + (i % 64 == round * 8));
        for (i = 0; i < w; i++)
            hash64_openssl(buf + 64 * i, want[i]);
        for (mode = 0; mode < 3; mode++) {
            int out_stride = mode == 1 ? 64 : 32;
            if (mode)
                memcpy(got, buf, 16 * 64);
            for (i = 0; i < w; i++) {
                j = mode == 0 ? (i * 5 + round) % w : i;
                ins[i] = (mode == 0 ? buf : got) + 64 * j;
                outs[i] = got + out_stride * j;
            }
            fn(ins, outs);
            for (i = 0; i < w; i++)
                ok = ok && memcmp(got + out_stride * i, want[i], 32) == 0;
        }
    }
    return ok;
}
#endif

static int env_set(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && *v != '\0' && strcmp(v, "0") != 0;
}

static void init_paths(void)
{
#ifdef HAVE_SHANI_CODE
    int shani = !env_set("ERA_TOOLS_NO_SHANI") && cpu_has_shani();
    int p;
    have_avx = cpu_has_avx();
    pad_schedule(); /* PAD_WK for every SIMD path */
    if (shani) {
        unsigned char probe[64], a[32], b[32];
        int i, j, ok = 1;
        for (i = 0; i < 64 && ok; i++) {
            for (j = 0; j < 64; j++)
                probe[j] = (unsigned char)(i * 31 + j * 7 + (j == i ? 0x80 : 0));
            hash64_openssl(probe, a);
            hash64_shani(probe, b);
            ok = memcmp(a, b, 32) == 0;
        }
        paths[P_SHANI1].ok = ok;
        for (p = P_SHANI2; p <= P_SHANI8 && ok; p++)
            paths[p].ok = selftest_group(paths[p].fn, paths[p].width);
    }
    if (!env_set("ERA_TOOLS_NO_AVX2") && cpu_has_avx2())
        paths[P_AVX2].ok = selftest_group(paths[P_AVX2].fn, 8);
    if (!env_set("ERA_TOOLS_NO_AVX512") && cpu_has_avx512())
        paths[P_AVX512].ok = selftest_group(paths[P_AVX512].fn, 16);
#endif
}

/* CPU time of this thread where the clock exists (a preempted round does not count the time
 * it waited), else monotonic time. */
static double now_ns(void)
{
    struct timespec ts;
#ifdef CLOCK_THREAD_CPUTIME_ID
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0)
        return ts.tv_sec * 1e9 + ts.tv_nsec;
#endif
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* ns per hash of every usable path on a batch of TIME_N inputs, best of TIME_ROUNDS rounds
 * run interleaved (so load spikes hit every path alike); ~1.5 ms at import. */
#define TIME_N 256
#define TIME_ROUNDS 7
static void time_paths(void)
{
    unsigned char *buf = (unsigned char *)malloc(64 * TIME_N), *out;
    int p, r, i;
    if (buf == NULL)
        return;
    out = buf; /* in place, as layers are hashed */
    for (p = 0; p < NPATHS; p++)
        paths[p].ns = 0;
    for (r = 0; r < TIME_ROUNDS; r++)
        for (p = 0; p < NPATHS; p++) {
            double t0, dt;
            if (!paths[p].ok)
                continue;
            for (i = 0; i < 64 * TIME_N; i++)
                buf[i] = (unsigned char)(i * 37 + r);
            set_path(p);
            t0 = now_ns();
            hash_many(buf, out, TIME_N);
            dt = (now_ns() - t0) / TIME_N;
            if (paths[p].ns == 0 || dt < paths[p].ns)
                paths[p].ns = dt;
        }
    free(buf);
}

static int find_path(const char *name)
{
    int p;
    for (p = 0; p < NPATHS; p++)
        if (strcmp(paths[p].name, name) == 0)
            return p;
    return -1;
}

/* Fastest usable path by the import timings, or the forced one; returns 0, or -1 when
 * ERA_TOOLS_SHA256_PATH names no usable path (the timing pick is used then). */
static int choose_path(void)
{
    const char *forced = getenv("ERA_TOOLS_SHA256_PATH");
    int p, best = P_OPENSSL;
    time_paths();
    for (p = 0; p < NPATHS; p++)
        if (paths[p].ok && paths[p].ns > 0 && paths[p].ns < paths[best].ns)
            best = p;
    if (forced != NULL && *forced) {
        p = find_path(forced);
        if (p >= 0 && paths[p].ok) {
            set_path(p);
            return 0;
        }
        set_path(best);
        return -1;
    }
    set_path(best);
    return 0;
}

/* Merkleize `count` chunks held in `work` (capacity >= count + 1 chunks, clobbered) up to
 * 2**depth leaves; root into out. */
static void merkleize_inplace(unsigned char *work, Py_ssize_t count, int depth, unsigned char *out)
{
    int d;
    if (count == 0) {
        memcpy(out, ZERO_HASHES[depth], 32);
        return;
    }
    for (d = 0; d < depth; d++) {
        if (count & 1) {
            memcpy(work + 32 * count, ZERO_HASHES[d], 32);
            count++;
        }
        hash_many(work, work, count / 2);
        count /= 2;
    }
    memcpy(out, work, 32);
}

static PyObject *py_hash_pairs(PyObject *self, PyObject *arg)
{
    Py_buffer view;
    PyObject *result;
    Py_ssize_t n;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    if (view.len % 64) {
        PyBuffer_Release(&view);
        PyErr_Format(PyExc_ValueError, "hash_pairs: input length %zd is not a multiple of 64",
                     view.len);
        return NULL;
    }
    n = view.len / 64;
    result = PyBytes_FromStringAndSize(NULL, n * 32);
    if (result == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    if (view.len >= GIL_RELEASE_BYTES) {
        Py_BEGIN_ALLOW_THREADS
        hash_many((const unsigned char *)view.buf, (unsigned char *)PyBytes_AS_STRING(result), n);
        Py_END_ALLOW_THREADS
    } else {
        hash_many((const unsigned char *)view.buf, (unsigned char *)PyBytes_AS_STRING(result), n);
    }
    PyBuffer_Release(&view);
    return result;
}

static PyObject *py_merkleize(PyObject *self, PyObject *args)
{
    Py_buffer view;
    int depth;
    Py_ssize_t count;
    unsigned char *work;
    unsigned char root[32];
    if (!PyArg_ParseTuple(args, "y*i:merkleize", &view, &depth))
        return NULL;
    if (view.len % 32) {
        PyBuffer_Release(&view);
        PyErr_Format(PyExc_ValueError, "merkleize: input length %zd is not a multiple of 32",
                     view.len);
        return NULL;
    }
    count = view.len / 32;
    if (depth < 0 || depth > MAX_DEPTH || (depth < 63 && count > ((Py_ssize_t)1 << depth))) {
        PyBuffer_Release(&view);
        PyErr_Format(PyExc_ValueError, "merkleize: %zd chunks do not fit depth %d", count, depth);
        return NULL;
    }
    work = (unsigned char *)PyMem_RawMalloc((size_t)(count + 1) * 32);
    if (work == NULL) {
        PyBuffer_Release(&view);
        return PyErr_NoMemory();
    }
    memcpy(work, view.buf, (size_t)view.len);
    if (view.len >= GIL_RELEASE_BYTES) {
        Py_BEGIN_ALLOW_THREADS
        merkleize_inplace(work, count, depth, root);
        Py_END_ALLOW_THREADS
    } else {
        merkleize_inplace(work, count, depth, root);
    }
    PyMem_RawFree(work);
    PyBuffer_Release(&view);
    return PyBytes_FromStringAndSize((const char *)root, 32);
}

static void merkleize_each_impl(const unsigned char *in, unsigned char *out, Py_ssize_t n,
                                Py_ssize_t k, int depth, unsigned char *work)
{
    Py_ssize_t i;
    for (i = 0; i < n; i++) {
        memcpy(work, in + 32 * k * i, (size_t)(32 * k));
        merkleize_inplace(work, k, depth, out + 32 * i);
    }
}

static PyObject *py_merkleize_each(PyObject *self, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t k, n;
    int depth;
    unsigned char *work;
    PyObject *result;
    if (!PyArg_ParseTuple(args, "y*ni:merkleize_each", &view, &k, &depth))
        return NULL;
    if (k <= 0 || depth < 0 || depth > 30 || k > ((Py_ssize_t)1 << depth) || view.len % (32 * k)) {
        PyBuffer_Release(&view);
        PyErr_Format(PyExc_ValueError,
                     "merkleize_each: bad shape (%zd bytes, %zd chunks per item, depth %d)",
                     view.len, k, depth);
        return NULL;
    }
    n = view.len / (32 * k);
    result = PyBytes_FromStringAndSize(NULL, n * 32);
    if (result == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    work = (unsigned char *)PyMem_RawMalloc((size_t)(k + 1) * 32);
    if (work == NULL) {
        Py_DECREF(result);
        PyBuffer_Release(&view);
        return PyErr_NoMemory();
    }
    if (view.len >= GIL_RELEASE_BYTES) {
        Py_BEGIN_ALLOW_THREADS
        merkleize_each_impl((const unsigned char *)view.buf,
                            (unsigned char *)PyBytes_AS_STRING(result), n, k, depth, work);
        Py_END_ALLOW_THREADS
    } else {
        merkleize_each_impl((const unsigned char *)view.buf,
                            (unsigned char *)PyBytes_AS_STRING(result), n, k, depth, work);
    }
    PyMem_RawFree(work);
    PyBuffer_Release(&view);
    return result;
}

/* ------------------------------------------------------------------------------------------
 * ssz_root: hash_tree_root of one serialized SSZ value, walked in C from a flat "plan" that
 * era_tools.ssz.fast compiles once per sedes (see _native_plan there).  Validation mirrors the
 * Python walker (offsets, sizes, limits, booleans, bitlist delimiters, bitvector tails); on any
 * malformed input the walk stops and ssz_root returns None, and the caller re-walks in Python to
 * name the field and offset.  The GIL is released for the whole walk (no Python objects used).
 */
enum { K_BASIC, K_BYTEVEC, K_BITVEC, K_BYTELIST, K_BITLIST, K_VECTOR, K_LIST, K_CONTAINER };
enum { F_KIND, F_FIXED, F_SIZE, F_BASIC_SIZE, F_IS_BOOL, F_LENGTH, F_ELEM, F_DEPTH, F_NFIELDS,
       F_KIDS, F_FIXED_PART, NF };

typedef struct {
    const int64_t *nodes;
    Py_ssize_t n_nodes;
    const int64_t *kids;  /* container children (node indices) */
    const int64_t *foffs; /* their positions in the container's fixed part */
    Py_ssize_t n_kids;
} Plan;

static void mix_in_length(unsigned char *root, uint64_t len)
{
    unsigned char buf[64];
    int i;
    memcpy(buf, root, 32);
    memset(buf + 32, 0, 32);
    for (i = 0; i < 8; i++)
        buf[32 + i] = (unsigned char)(len >> (8 * i));
    hash64(buf, root);
}

/* Root of `n` bytes packed into chunks (zero-padded) and merkleized to 2**depth leaves. */
static int merkleize_bytes(const unsigned char *d, size_t n, int depth, unsigned char *out)
{
    size_t chunks = (n + 31) / 32;
    unsigned char stackbuf[32 * 9];
    unsigned char *work;
    if (depth < 0 || depth > MAX_DEPTH || (depth < 62 && chunks > ((size_t)1 << depth)))
        return -1;
    if (chunks == 0) {
        memcpy(out, ZERO_HASHES[depth], 32);
        return 0;
    }
    work = (chunks + 1) * 32 <= sizeof(stackbuf) ? stackbuf
                                                 : (unsigned char *)malloc((chunks + 1) * 32);
    if (work == NULL)
        return -2;
    memcpy(work, d, n);
    memset(work + n, 0, chunks * 32 - n);
    merkleize_inplace(work, (Py_ssize_t)chunks, depth, out);
    if (work != stackbuf)
        free(work);
    return 0;
}

static int64_t rd_off(const unsigned char *p)
{
    return (int64_t)p[0] | ((int64_t)p[1] << 8) | ((int64_t)p[2] << 16) | ((int64_t)p[3] << 24);
}

static int walk(const Plan *p, int64_t ni, const unsigned char *d, size_t n, unsigned char *out);

/* Roots of `count` elements (node ei) of the list/vector, into work (chunk per element), then
 * merkleized to 2**depth. */
static int walk_elems(const Plan *p, const int64_t *nd, const unsigned char *d, size_t n,
                      int is_list, unsigned char *out)
{
    int64_t ei = nd[F_ELEM];
    const int64_t *ed;
    size_t count, i;
    int depth = (int)nd[F_DEPTH];
    unsigned char *work;
    int rc = 0;
    if (ei < 0 || ei >= p->n_nodes)
        return -1;
    ed = p->nodes + NF * ei;
    if (ed[F_FIXED]) {
        size_t esize = (size_t)ed[F_SIZE];
        if (esize == 0 || n % esize)
            return -1;
        count = n / esize;
        if (is_list ? count > (size_t)nd[F_LENGTH] : count != (size_t)nd[F_LENGTH])
            return -1;
        if (ed[F_KIND] == K_BASIC) {
            if (ed[F_IS_BOOL])
                for (i = 0; i < n; i++)
                    if (d[i] > 1)
                        return -1;
            rc = merkleize_bytes(d, n, depth, out);
            if (rc == 0 && is_list)
                mix_in_length(out, count);
            return rc;
        }
        if (depth > MAX_DEPTH || (depth < 62 && count > ((size_t)1 << depth)))
            return -1;
        work = (unsigned char *)malloc((count + 1) * 32);
        if (work == NULL)
            return -2;
        for (i = 0; i < count && rc == 0; i++)
            rc = walk(p, ei, d + esize * i, esize, work + 32 * i);
    } else {
        int64_t first, prev, cur;
        if (n == 0) {
            count = 0;
            if (!is_list && nd[F_LENGTH] != 0)
                return -1;
            work = (unsigned char *)malloc(32);
            if (work == NULL)
                return -2;
        } else {
            if (n < 4)
                return -1;
            first = rd_off(d);
            if (first == 0 || first % 4 || (size_t)first > n)
                return -1;
            count = (size_t)first / 4;
            if (is_list ? count > (size_t)nd[F_LENGTH] : count != (size_t)nd[F_LENGTH])
                return -1;
            if (depth > MAX_DEPTH || (depth < 62 && count > ((size_t)1 << depth)))
                return -1;
            work = (unsigned char *)malloc((count + 1) * 32);
            if (work == NULL)
                return -2;
            prev = first;
            for (i = 0; i < count && rc == 0; i++) {
                int64_t end;
                cur = i ? rd_off(d + 4 * i) : first;
                if (cur < prev || (size_t)cur > n) {
                    rc = -1;
                    break;
                }
                end = i + 1 < count ? rd_off(d + 4 * (i + 1)) : (int64_t)n;
                if (end < cur || (size_t)end > n) {
                    rc = -1;
                    break;
                }
                rc = walk(p, ei, d + cur, (size_t)(end - cur), work + 32 * i);
                prev = cur;
            }
        }
    }
    if (rc == 0) {
        merkleize_inplace(work, (Py_ssize_t)count, depth, out);
        if (is_list)
            mix_in_length(out, count);
    }
    free(work);
    return rc;
}

static int walk(const Plan *p, int64_t ni, const unsigned char *d, size_t n, unsigned char *out)
{
    const int64_t *nd;
    int64_t kind;
    size_t i;
    if (ni < 0 || ni >= p->n_nodes)
        return -1;
    nd = p->nodes + NF * ni;
    kind = nd[F_KIND];
    if (nd[F_FIXED] && n != (size_t)nd[F_SIZE])
        return -1;
    switch (kind) {
    case K_BASIC:
        if (n > 32 || (nd[F_IS_BOOL] && d[0] > 1))
            return -1;
        memset(out, 0, 32);
        memcpy(out, d, n);
        return 0;
    case K_BYTEVEC:
        return merkleize_bytes(d, n, (int)nd[F_DEPTH], out);
    case K_BITVEC: {
        int extra = (int)((8 - nd[F_LENGTH] % 8) % 8);
        if (extra && n && (d[n - 1] & ((0xFF << (8 - extra)) & 0xFF)))
            return -1;
        return merkleize_bytes(d, n, (int)nd[F_DEPTH], out);
    }
    case K_BYTELIST:
        if (n > (size_t)nd[F_LENGTH])
            return -1;
        if (merkleize_bytes(d, n, (int)nd[F_DEPTH], out))
            return -1;
        mix_in_length(out, n);
        return 0;
    case K_BITLIST: {
        unsigned char last;
        int top = 0, rc;
        size_t bitlen, nbytes;
        unsigned char *tmp;
        if (n == 0)
            return -1;
        last = d[n - 1];
        if (last == 0)
            return -1;
        while ((last >> (top + 1)) != 0)
            top++;
        bitlen = 8 * (n - 1) + (size_t)top;
        if (bitlen > (size_t)nd[F_LENGTH])
            return -1;
        nbytes = (bitlen + 7) / 8;
        tmp = (unsigned char *)malloc(nbytes + 1);
        if (tmp == NULL)
            return -2;
        memcpy(tmp, d, nbytes);
        if (top)
            tmp[nbytes - 1] = (unsigned char)(last ^ (1u << top));
        rc = merkleize_bytes(tmp, nbytes, (int)nd[F_DEPTH], out);
        free(tmp);
        if (rc == 0)
            mix_in_length(out, bitlen);
        return rc;
    }
    case K_VECTOR:
        if (nd[F_ELEM] >= 0 && nd[F_ELEM] < p->n_nodes) {
            const int64_t *ed = p->nodes + NF * nd[F_ELEM];
            if (ed[F_KIND] == K_BASIC) { /* fixed: size checked above */
                if (ed[F_IS_BOOL])
                    for (i = 0; i < n; i++)
                        if (d[i] > 1)
                            return -1;
                return merkleize_bytes(d, n, (int)nd[F_DEPTH], out);
            }
        }
        return walk_elems(p, nd, d, n, 0, out);
    case K_LIST:
        return walk_elems(p, nd, d, n, 1, out);
    case K_CONTAINER: {
        int64_t nf = nd[F_NFIELDS], k0 = nd[F_KIDS], fixed_part = nd[F_FIXED_PART];
        int64_t prev = -1;
        unsigned char stackbuf[32 * 33];
        unsigned char *work;
        int rc = 0;
        if (nf <= 0 || k0 < 0 || k0 + nf > p->n_kids)
            return -1;
        if ((size_t)fixed_part > n)
            return -1;
        work = (size_t)(nf + 1) * 32 <= sizeof(stackbuf) ? stackbuf
                                                         : (unsigned char *)malloc((nf + 1) * 32);
        if (work == NULL)
            return -2;
        for (i = 0; i < (size_t)nf && rc == 0; i++) {
            int64_t ci = p->kids[k0 + i], at = p->foffs[k0 + i];
            const int64_t *cd;
            int64_t start, end;
            if (ci < 0 || ci >= p->n_nodes) {
                rc = -1;
                break;
            }
            cd = p->nodes + NF * ci;
            if (cd[F_FIXED]) {
                start = at;
                end = at + cd[F_SIZE];
            } else {
                size_t j;
                start = rd_off(d + at);
                if ((prev < 0 && start != fixed_part) || start < prev || (size_t)start > n) {
                    rc = -1;
                    break;
                }
                prev = start;
                end = (int64_t)n;
                for (j = i + 1; j < (size_t)nf; j++) {
                    const int64_t *cj = p->nodes + NF * p->kids[k0 + j];
                    if (!cj[F_FIXED]) {
                        end = rd_off(d + p->foffs[k0 + j]);
                        break;
                    }
                }
                if (end < start || (size_t)end > n) {
                    rc = -1;
                    break;
                }
            }
            rc = walk(p, ci, d + start, (size_t)(end - start), work + 32 * i);
        }
        if (rc == 0)
            merkleize_inplace(work, (Py_ssize_t)nf, (int)nd[F_DEPTH], out);
        if (work != stackbuf)
            free(work);
        return rc;
    }
    }
    return -1;
}

/* ------------------------------------------------------------------------------------------
 * Batched walker (the default with SHA-NI or AVX-512; _tune(batched=0) selects the per-value walker above,
 * the default with OpenSSL's block function and the benchmark baseline).  walk_batch() takes N values of one plan node at once and
 * returns their N roots: a container batch walks each field over all N values, a list batch
 * walks all elements of all its values as one batch of the element node, and every merkle
 * tree of the batch (packed bytes, element roots, field roots) is hashed level by level across
 * all trees in lockstep (merkleize_multi), so independent hashes -- the ~20 lone levels every
 * ByteList[2**30] transaction climbs (node || ZERO_HASHES[d]), the length mix-ins, the small
 * trees of attestations and withdrawals -- run through the 16-lane AVX-512 path and the
 * interleaved SHA-NI pairs instead of one dependent single hash after another.  Validation is the per-value walker's, check for
 * check; every allocation is sized from counts already checked against the data length.
 */
static int batched_walker = 1;
#define SLICE 1024 /* values per walk_batch call below the top: bounds the per-call scratch */

/* N trees, tree t holding cnt[t] chunks at arena + 32 * base[t] (capacity max(cnt, 1) + 1
 * chunks, clobbered), each merkleized to 2**depth leaves, then mixed with lens[t] if lens is
 * not NULL; roots into out + 32 * t.  cnt is clobbered. */
static void merkleize_multi(unsigned char *arena, size_t *base, size_t *cnt, size_t N,
                            int depth, uint64_t *lens, unsigned char *out)
{
    Jobs q;
    size_t t, j;
    int d;
    q.n = 0;
    for (t = 0; t < N; t++)
        if (cnt[t] == 0)
            memcpy(arena + 32 * base[t], ZERO_HASHES[depth], 32);
    for (d = 0; d < depth; d++) {
        for (t = 0; t < N; t++) {
            unsigned char *w = arena + 32 * base[t];
            size_t c = cnt[t];
            if (c == 0)
                continue;
            if (c & 1) {
                memcpy(w + 32 * c, ZERO_HASHES[d], 32);
                c++;
            }
            for (j = 0; j < c / 2; j++)
                jobs_add(&q, w + 64 * j, w + 32 * j);
            cnt[t] = c / 2;
        }
        jobs_flush(&q); /* the next level reads this one */
    }
    if (lens != NULL) {
        for (t = 0; t < N; t++) {
            unsigned char *w = arena + 32 * base[t];
            int i;
            memset(w + 32, 0, 32);
            for (i = 0; i < 8; i++)
                w[32 + i] = (unsigned char)(lens[t] >> (8 * i));
            jobs_add(&q, w, w);
        }
        jobs_flush(&q);
    }
    for (t = 0; t < N; t++)
        memcpy(out + 32 * t, arena + 32 * base[t], 32);
}

/* Scratch for one walk_batch call: one malloc for everything, or the caller's stack buffer. */
static void *scratch(size_t size, void *stackbuf, size_t stacksize)
{
    return size <= stacksize ? stackbuf : malloc(size ? size : 1);
}

static int walk_batch(const Plan *p, int64_t ni, const unsigned char *const *ds, const size_t *ns,
                      size_t N, unsigned char *out);

/* Packed kinds (byte/bit vectors and lists, vectors and lists of basic types): the bytes of
 * each value (bitlists without their delimiter) zero-padded to chunks, all N trees at once. */
static int batch_packed(const Plan *p, const int64_t *nd, const unsigned char *const *ds,
                        const size_t *ns, size_t N, unsigned char *out)
{
    int64_t kind = nd[F_KIND];
    int depth = (int)nd[F_DEPTH];
    int is_bool = 0, mix = kind == K_BYTELIST || kind == K_BITLIST || kind == K_LIST;
    size_t esize = 1, t, total = 0;
    unsigned char stackbuf[4096];
    unsigned char *mem, *arena;
    size_t *base, *cnt;
    uint64_t *lens;
    if (depth < 0 || depth > MAX_DEPTH)
        return -1;
    if (kind == K_VECTOR || kind == K_LIST) {
        const int64_t *ed;
        if (nd[F_ELEM] < 0 || nd[F_ELEM] >= p->n_nodes)
            return -1;
        ed = p->nodes + NF * nd[F_ELEM];
        esize = (size_t)ed[F_SIZE];
        is_bool = (int)ed[F_IS_BOOL];
        if (esize == 0)
            return -1;
    }
    /* checks, and the byte count each value packs */
    for (t = 0; t < N; t++) {
        const unsigned char *d = ds[t];
        size_t n = ns[t], nbytes = n, i;
        switch (kind) {
        case K_BITVEC: {
            int extra = (int)((8 - nd[F_LENGTH] % 8) % 8);
            if (extra && n && (d[n - 1] & ((0xFF << (8 - extra)) & 0xFF)))
                return -1;
            break;
        }
        case K_BYTELIST:
            if (n > (size_t)nd[F_LENGTH])
                return -1;
            break;
        case K_BITLIST: {
            unsigned char last;
            int top = 0;
            size_t bitlen;
            if (n == 0)
                return -1;
            last = d[n - 1];
            if (last == 0)
                return -1;
            while ((last >> (top + 1)) != 0)
                top++;
            bitlen = 8 * (n - 1) + (size_t)top;
            if (bitlen > (size_t)nd[F_LENGTH])
                return -1;
            nbytes = (bitlen + 7) / 8;
            break;
        }
        case K_LIST:
            if (n % esize || n / esize > (size_t)nd[F_LENGTH])
                return -1;
            /* fall through */
        case K_VECTOR:
            if (is_bool)
                for (i = 0; i < n; i++)
                    if (d[i] > 1)
                        return -1;
            break;
        }
        if (depth < 62 && (nbytes + 31) / 32 > ((size_t)1 << depth))
            return -1;
        total += ((nbytes + 31) / 32 > 0 ? (nbytes + 31) / 32 : 1) + 1;
    }
    mem = (unsigned char *)scratch(32 * total + N * (2 * sizeof(size_t) + sizeof(uint64_t)),
                                   stackbuf, sizeof(stackbuf));
    if (mem == NULL)
        return -2;
    arena = mem;
    base = (size_t *)(mem + 32 * total);
    cnt = base + N;
    lens = (uint64_t *)(cnt + N);
    total = 0;
    for (t = 0; t < N; t++) {
        const unsigned char *d = ds[t];
        size_t n = ns[t], nbytes = n, c;
        uint64_t len = n;
        unsigned char *w;
        if (kind == K_BITLIST) {
            unsigned char last = d[n - 1];
            int top = 0;
            while ((last >> (top + 1)) != 0)
                top++;
            len = 8 * (n - 1) + (size_t)top;
            nbytes = (size_t)((len + 7) / 8);
        } else if (kind == K_LIST) {
            len = n / esize;
        }
        c = (nbytes + 31) / 32;
        base[t] = total;
        cnt[t] = c;
        lens[t] = len;
        w = arena + 32 * total;
        memcpy(w, d, nbytes);
        memset(w + nbytes, 0, 32 * c - nbytes);
        if (kind == K_BITLIST && (len & 7)) /* clear the delimiter bit */
            w[nbytes - 1] = (unsigned char)(d[n - 1] ^ (1u << (len & 7)));
        total += (c > 0 ? c : 1) + 1;
    }
    merkleize_multi(arena, base, cnt, N, depth, mix ? lens : NULL, out);
    if (mem != stackbuf)
        free(mem);
    return 0;
}

/* Walk k element values as one batch; their roots to their chunk slots in arena. */
static int slice_run(const Plan *p, int64_t ei, const unsigned char *const *sd, const size_t *sn,
                     const size_t *sdst, size_t k, unsigned char *roots, unsigned char *arena)
{
    size_t j;
    int rc = walk_batch(p, ei, sd, sn, k, roots);
    for (j = 0; rc == 0 && j < k; j++)
        memcpy(arena + 32 * sdst[j], roots + 32 * j, 32);
    return rc;
}

/* Lists and vectors of composite elements: each value's element count and element ranges
 * (offset table) checked, then all elements of all N values walked as batches of at most SLICE
 * of the element node, their roots gathered per value and merkleized in lockstep. */
static int batch_elems(const Plan *p, const int64_t *nd, const unsigned char *const *ds,
                       const size_t *ns, size_t N, int is_list, unsigned char *out)
{
    int64_t ei = nd[F_ELEM];
    const int64_t *ed;
    int depth = (int)nd[F_DEPTH];
    size_t t, i, total = 0, esize = 0;
    int fixed, rc = 0;
    unsigned char *mem, *arena, *roots;
    size_t *base, *cnt;
    uint64_t *lens;
    const unsigned char **sd;
    size_t *sn, *sdst, k;
    if (ei < 0 || ei >= p->n_nodes || depth < 0 || depth > MAX_DEPTH)
        return -1;
    ed = p->nodes + NF * ei;
    fixed = (int)ed[F_FIXED];
    if (fixed) {
        esize = (size_t)ed[F_SIZE];
        if (esize == 0)
            return -1;
    }
    /* pass 1: counts and offset tables checked (as walk_elems) */
    for (t = 0; t < N; t++) {
        const unsigned char *d = ds[t];
        size_t n = ns[t], count;
        if (fixed) {
            if (n % esize)
                return -1;
            count = n / esize;
            if (is_list ? count > (size_t)nd[F_LENGTH] : count != (size_t)nd[F_LENGTH])
                return -1;
        } else if (n == 0) {
            count = 0;
            if (!is_list && nd[F_LENGTH] != 0)
                return -1;
        } else {
            int64_t first, prev, cur, end;
            if (n < 4)
                return -1;
            first = rd_off(d);
            if (first == 0 || first % 4 || (size_t)first > n)
                return -1;
            count = (size_t)first / 4;
            if (is_list ? count > (size_t)nd[F_LENGTH] : count != (size_t)nd[F_LENGTH])
                return -1;
            prev = first;
            for (i = 0; i < count; i++) {
                cur = i ? rd_off(d + 4 * i) : first;
                if (cur < prev || (size_t)cur > n)
                    return -1;
                end = i + 1 < count ? rd_off(d + 4 * (i + 1)) : (int64_t)n;
                if (end < cur || (size_t)end > n)
                    return -1;
                prev = cur;
            }
        }
        if (depth < 62 && count > ((size_t)1 << depth))
            return -1;
        total += (count > 0 ? count : 1) + 1;
    }
    /* every element holds at least one byte of the data (fixed: esize >= 1; variable: its
     * 4-byte offset), so total is bounded by the data length plus 2 per value */
    mem = (unsigned char *)malloc(32 * total + N * (2 * sizeof(size_t) + sizeof(uint64_t)) +
                                  SLICE * (32 + sizeof(void *) + 2 * sizeof(size_t)));
    if (mem == NULL)
        return -2;
    arena = mem;
    base = (size_t *)(mem + 32 * total);
    cnt = base + N;
    lens = (uint64_t *)(cnt + N);
    roots = (unsigned char *)(lens + N);
    sd = (const unsigned char **)(roots + 32 * SLICE);
    sn = (size_t *)(sd + SLICE);
    sdst = sn + SLICE;
    total = 0;
    k = 0;
    for (t = 0; t < N && rc == 0; t++) {
        const unsigned char *d = ds[t];
        size_t n = ns[t], count;
        count = fixed ? n / esize : (n == 0 ? 0 : (size_t)rd_off(d) / 4);
        base[t] = total;
        cnt[t] = count;
        lens[t] = count;
        for (i = 0; i < count && rc == 0; i++) {
            if (fixed) {
                sd[k] = d + esize * i;
                sn[k] = esize;
            } else {
                size_t cur = (size_t)rd_off(d + 4 * i);
                size_t end = i + 1 < count ? (size_t)rd_off(d + 4 * (i + 1)) : n;
                sd[k] = d + cur;
                sn[k] = end - cur;
            }
            sdst[k] = total + i;
            if (++k == SLICE) {
                rc = slice_run(p, ei, sd, sn, sdst, k, roots, arena);
                k = 0;
            }
        }
        total += (count > 0 ? count : 1) + 1;
    }
    if (rc == 0 && k)
        rc = slice_run(p, ei, sd, sn, sdst, k, roots, arena);
    if (rc == 0)
        merkleize_multi(arena, base, cnt, N, depth, is_list ? lens : NULL, out);
    free(mem);
    return rc;
}

/* Containers: each value's offset table checked (as walk), then every field walked over all N
 * values as one batch, and the N field-root trees merkleized in lockstep. */
static int batch_container(const Plan *p, const int64_t *nd, const unsigned char *const *ds,
                           const size_t *ns, size_t N, unsigned char *out)
{
    int64_t nf = nd[F_NFIELDS], k0 = nd[F_KIDS], fixed_part = nd[F_FIXED_PART];
    int depth = (int)nd[F_DEPTH];
    size_t t, f, stride;
    int rc = 0;
    unsigned char stackbuf[4096];
    unsigned char *mem, *arena, *roots;
    size_t *base, *cnt, *fn;
    const unsigned char **fd;
    if (nf <= 0 || k0 < 0 || k0 + nf > p->n_kids || depth < 0 || depth > MAX_DEPTH)
        return -1;
    for (f = 0; f < (size_t)nf; f++)
        if (p->kids[k0 + f] < 0 || p->kids[k0 + f] >= p->n_nodes)
            return -1;
    /* offset tables */
    for (t = 0; t < N; t++) {
        const unsigned char *d = ds[t];
        size_t n = ns[t];
        int64_t prev = -1;
        if ((size_t)fixed_part > n)
            return -1;
        for (f = 0; f < (size_t)nf; f++) {
            const int64_t *cd = p->nodes + NF * p->kids[k0 + f];
            int64_t start, end;
            size_t j;
            if (cd[F_FIXED])
                continue;
            start = rd_off(d + p->foffs[k0 + f]);
            if ((prev < 0 && start != fixed_part) || start < prev || (size_t)start > n)
                return -1;
            prev = start;
            end = (int64_t)n;
            for (j = f + 1; j < (size_t)nf; j++) {
                if (!p->nodes[NF * p->kids[k0 + j] + F_FIXED]) {
                    end = rd_off(d + p->foffs[k0 + j]);
                    break;
                }
            }
            if (end < start || (size_t)end > n)
                return -1;
        }
    }
    stride = (size_t)nf + 1;
    mem = (unsigned char *)scratch(N * (32 * stride + 32 + 3 * sizeof(size_t) + sizeof(void *)),
                                   stackbuf, sizeof(stackbuf));
    if (mem == NULL)
        return -2;
    arena = mem;
    roots = arena + 32 * stride * N;
    base = (size_t *)(roots + 32 * N);
    cnt = base + N;
    fn = cnt + N;
    fd = (const unsigned char **)(fn + N);
    for (f = 0; f < (size_t)nf && rc == 0; f++) {
        int64_t ci = p->kids[k0 + f], at = p->foffs[k0 + f];
        const int64_t *cd = p->nodes + NF * ci;
        for (t = 0; t < N; t++) {
            const unsigned char *d = ds[t];
            size_t n = ns[t];
            int64_t start, end;
            if (cd[F_FIXED]) {
                start = at;
                end = at + cd[F_SIZE];
            } else {
                size_t j;
                start = rd_off(d + at);
                end = (int64_t)n;
                for (j = f + 1; j < (size_t)nf; j++) {
                    if (!p->nodes[NF * p->kids[k0 + j] + F_FIXED]) {
                        end = rd_off(d + p->foffs[k0 + j]);
                        break;
                    }
                }
            }
            fd[t] = d + start;
            fn[t] = (size_t)(end - start);
        }
        rc = walk_batch(p, ci, fd, fn, N, roots);
        for (t = 0; rc == 0 && t < N; t++)
            memcpy(arena + 32 * (stride * t + f), roots + 32 * t, 32);
    }
    if (rc == 0) {
        for (t = 0; t < N; t++) {
            base[t] = stride * t;
            cnt[t] = (size_t)nf;
        }
        merkleize_multi(arena, base, cnt, N, depth, NULL, out);
    }
    if (mem != stackbuf)
        free(mem);
    return rc;
}

static int walk_batch(const Plan *p, int64_t ni, const unsigned char *const *ds, const size_t *ns,
                      size_t N, unsigned char *out)
{
    const int64_t *nd, *ed = NULL;
    size_t t;
    if (ni < 0 || ni >= p->n_nodes)
        return -1;
    nd = p->nodes + NF * ni;
    if (N == 0)
        return 0;
    if (nd[F_FIXED])
        for (t = 0; t < N; t++)
            if (ns[t] != (size_t)nd[F_SIZE])
                return -1;
    if (nd[F_KIND] == K_VECTOR || nd[F_KIND] == K_LIST) {
        if (nd[F_ELEM] < 0 || nd[F_ELEM] >= p->n_nodes)
            return -1;
        ed = p->nodes + NF * nd[F_ELEM];
    }
    switch (nd[F_KIND]) {
    case K_BASIC:
        for (t = 0; t < N; t++) {
            if (ns[t] > 32 || (nd[F_IS_BOOL] && ds[t][0] > 1))
                return -1;
            memset(out + 32 * t, 0, 32);
            memcpy(out + 32 * t, ds[t], ns[t]);
        }
        return 0;
    case K_BYTEVEC:
    case K_BITVEC:
    case K_BYTELIST:
    case K_BITLIST:
        return batch_packed(p, nd, ds, ns, N, out);
    case K_VECTOR:
    case K_LIST:
        if (ed[F_KIND] == K_BASIC)
            return batch_packed(p, nd, ds, ns, N, out);
        return batch_elems(p, nd, ds, ns, N, nd[F_KIND] == K_LIST, out);
    case K_CONTAINER:
        return batch_container(p, nd, ds, ns, N, out);
    }
    return -1;
}

/* Import-time check of the lockstep merkleizer against merkleize_inplace + mix_in_length
 * (trees of 0, 1, 2, 5 and 7 chunks at depth 3, with length mix-ins). */
static int selftest_multi(void)
{
    static const size_t counts[5] = {0, 1, 2, 5, 7};
    unsigned char arena[32 * 24], work[32 * 8], want[32], got[32 * 5];
    size_t base[5], cnt[5], t, i, pos = 0;
    uint64_t lens[5];
    for (t = 0; t < 5; t++) {
        base[t] = pos;
        cnt[t] = counts[t];
        lens[t] = 1000 + t;
        for (i = 0; i < 32 * counts[t]; i++)
            arena[32 * pos + i] = (unsigned char)(t * 59 + i * 13);
        pos += (counts[t] ? counts[t] : 1) + 1;
    }
    merkleize_multi(arena, base, cnt, 5, 3, lens, got);
    for (t = 0; t < 5; t++) {
        for (i = 0; i < 32 * counts[t]; i++)
            work[i] = (unsigned char)(t * 59 + i * 13);
        merkleize_inplace(work, (Py_ssize_t)counts[t], 3, want);
        mix_in_length(want, 1000 + t);
        if (memcmp(want, got + 32 * t, 32) != 0)
            return 0;
    }
    return 1;
}

static int get_i64(PyObject *obj, Py_buffer *view, const char *what)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_SIMPLE) < 0)
        return -1;
    if (view->len % 8) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_ValueError, "ssz_root: %s is not an int64 array", what);
        return -1;
    }
    return 0;
}

static PyObject *py_ssz_root(PyObject *self, PyObject *args)
{
    PyObject *o_nodes, *o_kids, *o_foffs;
    Py_buffer vn, vk, vf, data;
    Plan plan;
    unsigned char root[32];
    int rc;
    if (!PyArg_ParseTuple(args, "OOOy*:ssz_root", &o_nodes, &o_kids, &o_foffs, &data))
        return NULL;
    if (get_i64(o_nodes, &vn, "nodes") < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    if (get_i64(o_kids, &vk, "kids") < 0) {
        PyBuffer_Release(&vn);
        PyBuffer_Release(&data);
        return NULL;
    }
    if (get_i64(o_foffs, &vf, "foffs") < 0) {
        PyBuffer_Release(&vk);
        PyBuffer_Release(&vn);
        PyBuffer_Release(&data);
        return NULL;
    }
    plan.nodes = (const int64_t *)vn.buf;
    plan.n_nodes = vn.len / 8 / NF;
    plan.kids = (const int64_t *)vk.buf;
    plan.foffs = (const int64_t *)vf.buf;
    plan.n_kids = vk.len / 8 < vf.len / 8 ? vk.len / 8 : vf.len / 8;
    if (vn.len % (8 * NF) == 0 && plan.n_nodes > 0) {
        const unsigned char *d0 = (const unsigned char *)data.buf;
        size_t n0 = (size_t)data.len;
        int batched = batched_walker;
        if (data.len >= GIL_RELEASE_BYTES) {
            Py_BEGIN_ALLOW_THREADS
            rc = batched ? walk_batch(&plan, 0, &d0, &n0, 1, root) : walk(&plan, 0, d0, n0, root);
            Py_END_ALLOW_THREADS
        } else {
            rc = batched ? walk_batch(&plan, 0, &d0, &n0, 1, root) : walk(&plan, 0, d0, n0, root);
        }
    } else {
        rc = -3;
    }
    PyBuffer_Release(&vf);
    PyBuffer_Release(&vk);
    PyBuffer_Release(&vn);
    PyBuffer_Release(&data);
    if (rc == -2)
        return PyErr_NoMemory();
    if (rc == -3) {
        PyErr_SetString(PyExc_ValueError, "ssz_root: malformed plan");
        return NULL;
    }
    if (rc)
        Py_RETURN_NONE;
    return PyBytes_FromStringAndSize((const char *)root, 32);
}

/* ---- benchmark / test hooks ------------------------------------------------------------ */

/* The fastest usable path of a given width (by the import timings), or -1. */
static int path_of_width(int width)
{
    int p, best = -1;
    for (p = 0; p < NPATHS; p++)
        if (paths[p].ok && paths[p].width == width &&
            (best < 0 || paths[p].ns < paths[best].ns))
            best = p;
    return best;
}

/* _tune(batched=-1, lanes=-1) -> (batched, lanes): set the walker (1 batched, 0 per-value)
 * and the hash path by its width (1, 2, 4, 8, 16: the fastest usable path of that width);
 * -1 keeps a setting.  Returns the previous pair. */
static PyObject *py_tune(PyObject *self, PyObject *args)
{
    int batched = -1, lanes = -1, p = -1;
    PyObject *prev;
    if (!PyArg_ParseTuple(args, "|ii:_tune", &batched, &lanes))
        return NULL;
    if (lanes != -1 && (p = path_of_width(lanes)) < 0) {
        PyErr_Format(PyExc_ValueError, "_tune: no usable hash path %d lanes wide", lanes);
        return NULL;
    }
    prev = Py_BuildValue("(ii)", batched_walker, paths[cur_path].width);
    if (batched != -1)
        batched_walker = batched != 0;
    if (p >= 0)
        set_path(p);
    return prev;
}

/* _path(name=None) -> str: the hash path in use; with a name, switch to that path (one of
 * PATHS) and return the previous one. */
static PyObject *py_path(PyObject *self, PyObject *args)
{
    const char *name = NULL;
    int prev = cur_path, p;
    if (!PyArg_ParseTuple(args, "|z:_path", &name))
        return NULL;
    if (name != NULL) {
        p = find_path(name);
        if (p < 0 || !paths[p].ok) {
            PyErr_Format(PyExc_ValueError, "_path: %s is not a usable hash path here", name);
            return NULL;
        }
        set_path(p);
    }
    return PyUnicode_FromString(paths[prev].name);
}

/* _timings() -> {name: ns per hash}: the import-time timing of every usable path. */
static PyObject *py_timings(PyObject *self, PyObject *noargs)
{
    PyObject *d = PyDict_New(), *v;
    int p;
    if (d == NULL)
        return NULL;
    for (p = 0; p < NPATHS; p++) {
        if (!paths[p].ok)
            continue;
        v = PyFloat_FromDouble(paths[p].ns);
        if (v == NULL || PyDict_SetItemString(d, paths[p].name, v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(v);
    }
    return d;
}

/* _stats(on) -> (x1, x2, wide, spare): lone hashes, SHA-NI pair calls, calls of the current
 * path when it is wider than 2 (its width: _tune()[1]) and the spare lanes of its partial
 * groups (hashed, not used), counted since the last _stats call (then reset); counting
 * continues while on. */
static PyObject *py_stats(PyObject *self, PyObject *arg)
{
    int on = PyObject_IsTrue(arg);
    PyObject *r;
    if (on < 0)
        return NULL;
    r = Py_BuildValue("(KKKK)", st_calls[0], st_calls[1], st_calls[2], st_calls[3]);
    memset(st_calls, 0, sizeof(st_calls));
    stats_on = on;
    return r;
}

/* _chain(buf, iterations) -> bytes: buf holds L = len(buf) / 64 inputs, L = 1, or the current
 * path's width, or 2 where SHA-NI pairs are usable; each is hashed `iterations` times in a
 * dependent chain (the digest replaces the input's first 32 bytes, like a lone node climbing
 * next to a fixed sibling), the L chains interleaved L-wide; returns the L final 64-byte
 * inputs.  Measures the latency-bound cost per hash of each path. */
static PyObject *py_chain(PyObject *self, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t iters, it;
    PyObject *result;
    unsigned char *b;
    group_fn fn = NULL;
    int L, l;
    const unsigned char *ins[16];
    unsigned char *outs[16];
    if (!PyArg_ParseTuple(args, "y*n:_chain", &view, &iters))
        return NULL;
    L = (int)(view.len / 64);
    if (view.len % 64 == 0 && L > 1) {
        if (L == paths[cur_path].width)
            fn = paths[cur_path].fn;
        else if (L == 2 && paths[P_SHANI2].ok)
            fn = paths[P_SHANI2].fn;
    }
    if (view.len % 64 || (L != 1 && fn == NULL) || iters < 0) {
        PyBuffer_Release(&view);
        PyErr_Format(PyExc_ValueError, "_chain: 1, or %d (the current path's width), inputs "
                     "of 64 bytes", paths[cur_path].width);
        return NULL;
    }
    result = PyBytes_FromStringAndSize((const char *)view.buf, view.len);
    PyBuffer_Release(&view);
    if (result == NULL)
        return NULL;
    b = (unsigned char *)PyBytes_AS_STRING(result);
    for (l = 0; l < L; l++) {
        ins[l] = b + 64 * l;
        outs[l] = b + 64 * l;
    }
    Py_BEGIN_ALLOW_THREADS
    for (it = 0; it < iters; it++) {
        if (L == 1)
            hash64(b, b);
        else
            fn(ins, outs);
    }
    Py_END_ALLOW_THREADS
    return result;
}

static PyMethodDef methods[] = {
    {"hash_pairs", py_hash_pairs, METH_O,
     "hash_pairs(buf) -> bytes: SHA-256 of each 64-byte input (len(buf) % 64 == 0)."},
    {"merkleize", py_merkleize, METH_VARARGS,
     "merkleize(chunks, depth) -> bytes: root of chunks zero-padded to 2**depth leaves."},
    {"merkleize_each", py_merkleize_each, METH_VARARGS,
     "merkleize_each(buf, item_chunks, depth) -> bytes: the root of every item_chunks-chunk "
     "item of buf, each padded to 2**depth leaves."},
    {"ssz_root", py_ssz_root, METH_VARARGS,
     "ssz_root(nodes, kids, foffs, data) -> bytes | None: hash_tree_root of the serialized value "
     "of plan node 0 (int64 plan arrays from era_tools.ssz.fast), None if data is malformed."},
    {"_tune", py_tune, METH_VARARGS,
     "_tune(batched=-1, lanes=-1) -> (batched, lanes): benchmark/test hook: select the "
     "batched or per-value ssz_root walker and the hash path by width (the fastest usable "
     "path 1, 2, 4, 8 or 16 lanes wide)."},
    {"_path", py_path, METH_VARARGS,
     "_path(name=None) -> str: benchmark/test hook: the hash path in use; with a name (one "
     "of PATHS), switch to it and return the previous one."},
    {"_timings", py_timings, METH_NOARGS,
     "_timings() -> dict: ns per hash of every usable path, timed at import."},
    {"_stats", py_stats, METH_O,
     "_stats(on) -> (x1, x2, wide, spare): lone hashes, SHA-NI pair calls, calls of the "
     "current path when wider than 2, spare lanes of its partial groups, since the last "
     "call; counts while on."},
    {"_chain", py_chain, METH_VARARGS,
     "_chain(buf, iterations) -> bytes: len(buf)/64 dependent hash chains run interleaved."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "_sha256",
    "Batch SHA-256 over 64-byte inputs (OpenSSL libcrypto) for SSZ merkleization.", -1, methods,
};

PyMODINIT_FUNC PyInit__sha256(void)
{
    int d, p, forced_ok;
    PyObject *m, *names;
    init_paths();
    forced_ok = choose_path() == 0; /* before the zero hashes: hashed with the chosen path */
    memset(ZERO_HASHES[0], 0, 32);
    for (d = 0; d < MAX_DEPTH; d++) {
        unsigned char pair[64];
        memcpy(pair, ZERO_HASHES[d], 32);
        memcpy(pair + 32, ZERO_HASHES[d], 32);
        hash64(pair, ZERO_HASHES[d + 1]);
    }
    /* The batched walker pays through paths that hash several inputs at once (with OpenSSL's
     * one-at-a-time block function alone it measured 8% slower than the per-value walker). */
    batched_walker = paths[cur_path].width > 1 && selftest_multi();
    m = PyModule_Create(&moduledef);
    if (m == NULL)
        return NULL;
    names = PyTuple_New(0);
    for (p = 0; names != NULL && p < NPATHS; p++) {
        PyObject *n;
        if (!paths[p].ok)
            continue;
        n = PyUnicode_FromString(paths[p].name);
        if (n == NULL || _PyTuple_Resize(&names, PyTuple_GET_SIZE(names) + 1) < 0) {
            Py_XDECREF(n);
            Py_CLEAR(names);
            break;
        }
        PyTuple_SET_ITEM(names, PyTuple_GET_SIZE(names) - 1, n);
    }
    if (names == NULL || PyModule_AddObject(m, "PATHS", names) < 0) {
        Py_XDECREF(names);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddStringConstant(m, "OPENSSL_VERSION", OPENSSL_VERSION_TEXT) < 0 ||
        PyModule_AddStringConstant(m, "BACKEND", single_shani ? "sha-ni" : "openssl") < 0 ||
        PyModule_AddIntConstant(m, "AVX512", paths[P_AVX512].ok) < 0 ||
        PyModule_AddStringConstant(m, "PATH", paths[cur_path].name) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    if (!forced_ok &&
        PyErr_WarnFormat(PyExc_RuntimeWarning, 1,
                         "ERA_TOOLS_SHA256_PATH=%s is not a usable hash path here (usable: "
                         "see era_tools._sha256.PATHS); using %s", getenv("ERA_TOOLS_SHA256_PATH"),
                         paths[cur_path].name) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
