/* era_tools._sha256: batch SHA-256 over 64-byte inputs for SSZ merkleization.
 *
 * Links OpenSSL's libcrypto and drives its block function directly (SHA256_Transform, which
 * dispatches to SHA-NI / AVX2 code where the CPU has it): a 64-byte input is exactly one
 * message block plus one constant padding block, so each hash is two block calls with no
 * per-call allocation or algorithm lookup.
 *
 * Entry points (all take bytes-like objects, all release the GIL on big inputs):
 *   hash_pairs(buf) -> bytes            len(buf) % 64 == 0; each 64-byte input -> 32-byte digest
 *   merkleize(chunks, depth) -> bytes   root of the chunks zero-padded to 2**depth leaves
 *   merkleize_each(buf, item_chunks, depth) -> bytes
 *       buf holds n items of item_chunks 32-byte chunks each; returns the n roots (n*32 bytes),
 *       each item merkleized to 2**depth leaves (item_chunks <= 2**depth)
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include <stdint.h>

#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/opensslv.h>
#include <openssl/sha.h>

/* Inputs of at least this many bytes are hashed with the GIL released. */
#define GIL_RELEASE_BYTES (64 * 256)
#define MAX_DEPTH 64

static unsigned char ZERO_HASHES[MAX_DEPTH + 1][32];

#if defined(OPENSSL_NO_DEPRECATED_3_0)
static void hash64(const unsigned char *in, unsigned char *out)
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

static void hash64(const unsigned char *in, unsigned char *out)
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

/* out may equal in (in-place layer hashing: output i is written after input 2i is read). */
static void hash_many(const unsigned char *in, unsigned char *out, Py_ssize_t n)
{
    Py_ssize_t i;
    unsigned char tmp[32];
    for (i = 0; i < n; i++) {
        hash64(in + 64 * i, tmp);
        memcpy(out + 32 * i, tmp, 32);
    }
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

static PyMethodDef methods[] = {
    {"hash_pairs", py_hash_pairs, METH_O,
     "hash_pairs(buf) -> bytes: SHA-256 of each 64-byte input (len(buf) % 64 == 0)."},
    {"merkleize", py_merkleize, METH_VARARGS,
     "merkleize(chunks, depth) -> bytes: root of chunks zero-padded to 2**depth leaves."},
    {"merkleize_each", py_merkleize_each, METH_VARARGS,
     "merkleize_each(buf, item_chunks, depth) -> bytes: the root of every item_chunks-chunk "
     "item of buf, each padded to 2**depth leaves."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "_sha256",
    "Batch SHA-256 over 64-byte inputs (OpenSSL libcrypto) for SSZ merkleization.", -1, methods,
};

PyMODINIT_FUNC PyInit__sha256(void)
{
    int d;
    PyObject *m;
    memset(ZERO_HASHES[0], 0, 32);
    for (d = 0; d < MAX_DEPTH; d++) {
        unsigned char pair[64];
        memcpy(pair, ZERO_HASHES[d], 32);
        memcpy(pair + 32, ZERO_HASHES[d], 32);
        hash64(pair, ZERO_HASHES[d + 1]);
    }
    m = PyModule_Create(&moduledef);
    if (m == NULL)
        return NULL;
    if (PyModule_AddStringConstant(m, "OPENSSL_VERSION", OPENSSL_VERSION_TEXT) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
