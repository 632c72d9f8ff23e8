/* Keccak-256 (Ethereum's pre-standard SHA-3 padding) of many slices of one buffer.
 *
 * keccak256_many(data, starts, ends) -> bytes: data is any contiguous buffer, starts and ends
 * are int64 buffers of n offsets each; returns the n digests, 32 bytes each, concatenated.
 * Every slice is bounds-checked before hashing; the GIL is released while hashing.  The
 * transactions table of an era hashes ~1M transactions this way (era_tools.era1.keccak256_many,
 * which falls back to pycryptodome when this optional extension is not built).
 *
 * The permutation is Keccak-f[1600] as FIPS 202 section 3 defines it (theta, rho and pi in one
 * pass, chi, iota), 24 rounds; rate 136 bytes, Keccak padding 0x01 ... 0x80.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static const uint64_t ROUND_CONSTANTS[24] = {
    0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808aULL,
    0x8000000080008000ULL, 0x000000000000808bULL, 0x0000000080000001ULL,
    0x8000000080008081ULL, 0x8000000000008009ULL, 0x000000000000008aULL,
    0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000aULL,
    0x000000008000808bULL, 0x800000000000008bULL, 0x8000000000008089ULL,
    0x8000000000008003ULL, 0x8000000000008002ULL, 0x8000000000000080ULL,
    0x000000000000800aULL, 0x800000008000000aULL, 0x8000000080008081ULL,
    0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL,
};
/* rho rotation of lane x + 5y (FIPS 202 table 2) */
static const unsigned RHO[25] = {0,  1,  62, 28, 27, 36, 44, 6,  55, 20, 3,  10, 43,
                                 25, 39, 41, 45, 15, 21, 8,  18, 2,  61, 56, 14};

#define ROTL(x, n) (((x) << (n)) | ((x) >> ((64 - (n)) & 63)))

/* Written as loops over constant indices; the pragmas let the compiler unroll them fully so
 * that every index and rotation is a constant. */
static void keccak_f1600(uint64_t a[25])
{
    uint64_t b[25], c[5], d[5];
    int round, x, y;
    for (round = 0; round < 24; round++) {
#pragma GCC unroll 5
        for (x = 0; x < 5; x++)
            c[x] = a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20];
#pragma GCC unroll 5
        for (x = 0; x < 5; x++)
            d[x] = c[(x + 4) % 5] ^ ROTL(c[(x + 1) % 5], 1);
        /* theta, rho and pi: B[y, 2x + 3y] = ROT(A[x, y] ^ D[x], r[x, y]) */
#pragma GCC unroll 5
        for (y = 0; y < 5; y++) {
#pragma GCC unroll 5
            for (x = 0; x < 5; x++)
                b[y + 5 * ((2 * x + 3 * y) % 5)] = ROTL(a[x + 5 * y] ^ d[x], RHO[x + 5 * y]);
        }
        /* chi */
#pragma GCC unroll 5
        for (y = 0; y < 5; y++) {
#pragma GCC unroll 5
            for (x = 0; x < 5; x++)
                a[x + 5 * y] = b[x + 5 * y] ^ (~b[(x + 1) % 5 + 5 * y] & b[(x + 2) % 5 + 5 * y]);
        }
        a[0] ^= ROUND_CONSTANTS[round]; /* iota */
    }
}

static inline uint64_t load64(const unsigned char *p)
{
    uint64_t v = 0;
    int k;
    for (k = 7; k >= 0; k--)
        v = (v << 8) | p[k];
    return v;
}

#define RATE 136

static void keccak256(const unsigned char *in, size_t len, unsigned char *out)
{
    uint64_t a[25];
    unsigned char last[RATE];
    size_t rem;
    int i;
    memset(a, 0, sizeof(a));
    while (len >= RATE) {
        for (i = 0; i < RATE / 8; i++)
            a[i] ^= load64(in + 8 * i);
        keccak_f1600(a);
        in += RATE;
        len -= RATE;
    }
    rem = len;
    memset(last, 0, RATE);
    memcpy(last, in, rem);
    last[rem] ^= 0x01;
    last[RATE - 1] ^= 0x80;
    for (i = 0; i < RATE / 8; i++)
        a[i] ^= load64(last + 8 * i);
    keccak_f1600(a);
    for (i = 0; i < 4; i++) {
        uint64_t v = a[i];
        int k;
        for (k = 0; k < 8; k++)
            out[8 * i + k] = (unsigned char)(v >> (8 * k));
    }
}

static PyObject *py_keccak256_many(PyObject *self, PyObject *args)
{
    Py_buffer data, starts, ends;
    PyObject *result = NULL;
    Py_ssize_t n, i;
    const int64_t *s, *e;
    unsigned char *out;
    if (!PyArg_ParseTuple(args, "y*y*y*:keccak256_many", &data, &starts, &ends))
        return NULL;
    if (starts.len != ends.len || starts.len % 8) {
        PyErr_SetString(PyExc_ValueError, "keccak256_many: starts and ends must be int64 "
                                          "buffers of the same length");
        goto done;
    }
    n = starts.len / 8;
    s = (const int64_t *)starts.buf;
    e = (const int64_t *)ends.buf;
    for (i = 0; i < n; i++) {
        if (s[i] < 0 || e[i] < s[i] || e[i] > data.len) {
            PyErr_Format(PyExc_ValueError, "keccak256_many: slice %zd [%lld, %lld) is outside "
                         "the %zd-byte buffer", i, (long long)s[i], (long long)e[i], data.len);
            goto done;
        }
    }
    result = PyBytes_FromStringAndSize(NULL, 32 * n);
    if (result == NULL)
        goto done;
    out = (unsigned char *)PyBytes_AS_STRING(result);
    Py_BEGIN_ALLOW_THREADS
    for (i = 0; i < n; i++)
        keccak256((const unsigned char *)data.buf + s[i], (size_t)(e[i] - s[i]), out + 32 * i);
    Py_END_ALLOW_THREADS
done:
    PyBuffer_Release(&data);
    PyBuffer_Release(&starts);
    PyBuffer_Release(&ends);
    return result;
}

static PyMethodDef methods[] = {
    {"keccak256_many", py_keccak256_many, METH_VARARGS,
     "keccak256_many(data, starts, ends) -> bytes: Keccak-256 of data[starts[i]:ends[i]] for "
     "every i (int64 offsets), 32 bytes each, concatenated."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {PyModuleDef_HEAD_INIT, "_keccak",
                                       "Batch Keccak-256 over slices of one buffer.", -1,
                                       methods};

PyMODINIT_FUNC PyInit__keccak(void) { return PyModule_Create(&moduledef); }
