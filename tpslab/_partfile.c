/* A compiled reader of Kinetics-TPS part files in their strict form, straight into columns.
 *
 * tpslab.challenge.decode_part_file calls parse() first. It reads only the plain form that tools write:
 *
 *   {video: {frame: {"humans": [{"box": [4 numbers], "parts": {name: {"box": B, "verb": V}}}]}}}
 *
 * with B, V one box and one string (form "single") or a list of boxes and a list of strings (form
 * "list"), keys and strings in plain ASCII without escapes, other fields skipped (as msgspec's structs
 * skip them). On anything else (escapes, non-ASCII text, a number beyond the float range, a key held
 * twice, parts given as a list, a field missing, text that is not JSON) it returns None *without an
 * opinion*: the caller then reads the text with msgspec, and then with the plain JSON walker, which give
 * the verdicts and the error messages. So this file never decides that a submission is wrong; it only
 * makes the common right one fast. tests/test_partfile.py checks it against the msgspec reader on random
 * and mutated files.
 *
 * In its repeats mode (check-submission) it reads on past a key held twice, recording its place, and
 * returns the places instead of the columns.
 *
 * It works in two passes: the first reads the whole text without holding the GIL (so that two files can
 * be read at once, in two threads), keeping each string as a code of its text; the second, with the GIL,
 * makes one str per distinct text and the lists of them.
 *
 * Numbers are read exactly (each float is the correctly rounded value of its decimal text, as Python's
 * float() gives): Clinger's fast path when the digits and the power of ten are exact in a double, then
 * x87 extended precision where it is sure (extended_double), else CPython's own PyOS_string_to_double. An integer is read as Python reads an int and then float(), so
 * "-0" is 0.0 and "-0.0" is -0.0.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define MAX_DEPTH 64        /* deeper unknown fields: leave the file to msgspec */
#define MAX_PARTS 64        /* parts of one human compared pairwise; more: leave it to msgspec */
#define TABLE_SLOTS 65536   /* distinct strings (frame keys, part names, verbs): at most half as many */

typedef struct {
    char *data;
    Py_ssize_t len, cap;
} Buf; /* a growable array (int64, double, int32 codes, Text), raw memory: usable without the GIL */

typedef struct {
    const char *text; /* in the caller's buffer, or in a given str */
    Py_ssize_t len;
    PyObject *given; /* the caller's str of this text, or NULL */
} Text;

typedef struct {
    uint64_t hash;
    int32_t code; /* -1: an empty slot */
} Slot;

typedef struct {
    const unsigned char *p, *end;
    int list_form;
    PyThreadState *released; /* while the first pass runs without the GIL */
    int no_memory;           /* the first pass ran out of memory: MemoryError once the GIL is back */
    Slot *table;             /* text -> code */
    Buf texts;               /* Text per code */
    int64_t *frame_key_video; /* per code: the last video that had it as a frame key (-1: none) */
    int64_t video;            /* the video being read */
    /* places of keys held twice (the mode that looks for them: find_repeats) */
    int find_repeats;        /* record each key held twice and read on, instead of giving up */
    Text frame_key;          /* the frame being read */
    int64_t human;           /* the human being read, in its frame (-1: none) */
    Text part;               /* the part being read (text NULL: none) */
    Buf repeats;             /* Place per key held twice */
    /* columns */
    Buf video_names; /* Text per video */
    Buf frame_codes, part_codes, verb_codes;
    Buf video_frames, frame_humans, human_box, human_parts, part_box, part_nbox, part_nverb;
} Parser;

typedef struct {
    int64_t video, human; /* human -1: the key is not inside a human */
    Text frame, part;     /* frame text NULL: the key is a video's; part text NULL: not inside a part */
    const char *field;    /* the field held twice, or NULL when it is the frame key or the part name */
} Place;

/* Returns from the readers: 0 read, -1 not the plain form (or out of memory: Parser.no_memory says). */
#define GIVE_UP (-1)

static int buf_put(Buf *b, const void *value, Py_ssize_t size) {
    if (b->len + size > b->cap) {
        Py_ssize_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + size) cap *= 2;
        char *data = PyMem_RawRealloc(b->data, cap);
        if (data == NULL) return GIVE_UP; /* the caller's Parser records it */
        b->data = data;
        b->cap = cap;
    }
    memcpy(b->data + b->len, value, size);
    b->len += size;
    return 0;
}

static int put(Parser *ps, Buf *b, const void *value, Py_ssize_t size) {
    if (buf_put(b, value, size) == 0) return 0;
    ps->no_memory = 1;
    return GIVE_UP;
}

static int put_count(Parser *ps, Buf *b, int64_t n) { return put(ps, b, &n, sizeof n); }

/* A key held twice where the reader is (field: which one; NULL for the frame key or part name just read):
 * not the plain form, unless looking for such keys: then its place is recorded and reading goes on. */
static int held_twice(Parser *ps, const char *field) {
    if (!ps->find_repeats) return GIVE_UP;
    Place place = {ps->video, ps->human, ps->frame_key, ps->part, field};
    return put(ps, &ps->repeats, &place, sizeof place);
}

static inline void skip_space(Parser *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\r' || *ps->p == '\t')) ps->p++;
}

/* The next character after white space is c: consume it. */
static inline int expect(Parser *ps, unsigned char c) {
    skip_space(ps);
    if (ps->p < ps->end && *ps->p == c) {
        ps->p++;
        return 0;
    }
    return GIVE_UP;
}

/* After an element of a container: 1 when another follows (a comma was read), 0 at the closing bracket. */
static inline int more(Parser *ps, unsigned char close) {
    skip_space(ps);
    if (ps->p >= ps->end) return GIVE_UP;
    if (*ps->p == ',') {
        ps->p++;
        return 1;
    }
    if (*ps->p == close) {
        ps->p++;
        return 0;
    }
    return GIVE_UP;
}

/* An empty container: consumes the closing bracket when it comes first (after white space). */
static inline int closes_at_once(Parser *ps, unsigned char close) {
    skip_space(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        return 1;
    }
    return 0;
}

/* A string of printable ASCII without escapes: its text (not copied). */
static int read_text(Parser *ps, const char **text, Py_ssize_t *len) {
    skip_space(ps);
    if (ps->p >= ps->end || *ps->p != '"') return GIVE_UP;
    const unsigned char *start = ++ps->p;
    while (ps->p < ps->end) {
        unsigned char c = *ps->p;
        if (c == '"') {
            *text = (const char *)start;
            *len = ps->p - start;
            ps->p++;
            return 0;
        }
        if (c == '\\' || c < 0x20 || c >= 0x80) return GIVE_UP;
        ps->p++;
    }
    return GIVE_UP;
}

static PyObject *ascii_str(const char *text, Py_ssize_t len) {
    PyObject *s = PyUnicode_New(len, 127);
    if (s != NULL) memcpy(PyUnicode_1BYTE_DATA(s), text, len);
    return s;
}

/* The code of a text: the same for equal texts, the next one for a new text; GIVE_UP when the table is
 * full (a file with that many distinct strings is msgspec's) or memory runs out. */
static int32_t code_of(Parser *ps, const char *text, Py_ssize_t len, PyObject *given) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (Py_ssize_t i = 0; i < len; i++) h = (h ^ (unsigned char)text[i]) * 1099511628211ULL;
    size_t i = (size_t)h & (TABLE_SLOTS - 1);
    const Text *texts = (const Text *)ps->texts.data;
    for (; ps->table[i].code >= 0; i = (i + 1) & (TABLE_SLOTS - 1)) {
        const Text *t = &texts[ps->table[i].code];
        if (ps->table[i].hash == h && t->len == len && memcmp(t->text, text, len) == 0) return ps->table[i].code;
    }
    int32_t code = (int32_t)(ps->texts.len / sizeof(Text));
    if (code >= TABLE_SLOTS / 2) return GIVE_UP; /* half full at most: the probing above always ends */
    Text t = {text, len, given};
    if (put(ps, &ps->texts, &t, sizeof t) < 0) return GIVE_UP;
    ps->table[i] = (Slot){h, code};
    return code;
}

static int put_code(Parser *ps, Buf *codes, const char *text, Py_ssize_t len, int32_t *out) {
    int32_t code = code_of(ps, text, len, NULL);
    if (code < 0 || put(ps, codes, &code, sizeof code) < 0) return GIVE_UP;
    if (out != NULL) *out = code;
    return 0;
}

/* Strings given by the caller (the vocabulary's states) come back as themselves wherever they occur. */
static int register_given(Parser *ps, PyObject *given) {
    PyObject *seq = PySequence_Fast(given, "shared strings must be a sequence");
    if (seq == NULL) return GIVE_UP;
    for (Py_ssize_t k = 0; k < PySequence_Fast_GET_SIZE(seq); k++) {
        PyObject *str = PySequence_Fast_GET_ITEM(seq, k);
        if (!PyUnicode_Check(str) || !PyUnicode_IS_ASCII(str)) continue; /* the file's text is ASCII only */
        Py_ssize_t len;
        const char *text = PyUnicode_AsUTF8AndSize(str, &len); /* lives as long as str (held by the caller) */
        if (code_of(ps, text, len, str) < 0) break; /* more than the table holds: the rest are made anew */
    }
    Py_DECREF(seq);
    if (ps->no_memory) PyErr_NoMemory();
    return ps->no_memory ? GIVE_UP : 0;
}

static const double POW10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

#if LDBL_MANT_DIG == 64 && !defined(TPSLAB_NO_EXTENDED) /* the define: to test the other path */
/* x87's extended precision (64-bit significands): the digits of a float as repr() writes them (up to 17,
 * below 2**64) and powers of ten up to 10**27 are exact in it, so m * 10**e and m / 10**e come out correctly
 * rounded to 64 bits. Rounding that once more to a double is right unless the 64-bit result lies within one
 * unit of a point halfway between two doubles (its last 11 bits 0x3ff..0x401): then the caller takes the
 * slow path. Used only where the machine really computes in extended precision (extended_works). */
static const long double POW10_EXTENDED[] = {
    1e0L,  1e1L,  1e2L,  1e3L,  1e4L,  1e5L,  1e6L,  1e7L,  1e8L,  1e9L,  1e10L, 1e11L, 1e12L, 1e13L,
    1e14L, 1e15L, 1e16L, 1e17L, 1e18L, 1e19L, 1e20L, 1e21L, 1e22L, 1e23L, 1e24L, 1e25L, 1e26L, 1e27L};
static int extended_works = 0;

static int extended_double(uint64_t m, int64_t exp10, double *out) {
    if (!extended_works || exp10 < -27 || exp10 > 27) return 0;
    long double v = exp10 >= 0 ? (long double)m * POW10_EXTENDED[exp10] : (long double)m / POW10_EXTENDED[-exp10];
    int e;
    uint64_t bits = (uint64_t)ldexpl(frexpl(v, &e), 64); /* the 64-bit significand, exactly */
    unsigned low = (unsigned)(bits & 0x7FF);
    if (low >= 0x3FF && low <= 0x401) return 0;
    *out = (double)v;
    return 1;
}

static void check_extended(void) {
    volatile long double one = 1.0L, tiny = 0x1p-60L; /* lost unless sums keep 64 bits */
    extended_works = one + tiny != one;
}
#else
static int extended_double(uint64_t m, int64_t exp10, double *out) { return 0; }
static void check_extended(void) {}
#endif

static inline int is_digit(const Parser *ps) { return ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9'; }

/* A JSON number as a finite double (see the top of this file); with out NULL only its grammar is checked. */
static int read_number(Parser *ps, double *out) {
    skip_space(ps);
    const unsigned char *start = ps->p;
    int negative = 0, integer = 1, exact = 1, digits = 0;
    uint64_t m = 0;
    int64_t exp10 = 0; /* 64 bits even where long has 32 (Windows): a number may have billions of digits */
    if (ps->p < ps->end && *ps->p == '-') {
        negative = 1;
        ps->p++;
    }
    if (!is_digit(ps)) return GIVE_UP;
    if (*ps->p == '0') {
        ps->p++;
        if (is_digit(ps)) return GIVE_UP; /* a leading zero */
    } else {
        for (; is_digit(ps); ps->p++) {
            if (digits < 19) {
                m = m * 10 + (*ps->p - '0');
                digits++;
            } else {
                exp10++;
                exact = 0;
            }
        }
    }
    if (ps->p < ps->end && *ps->p == '.') {
        integer = 0;
        ps->p++;
        if (!is_digit(ps)) return GIVE_UP;
        for (; is_digit(ps); ps->p++) {
            if (digits < 19) {
                m = m * 10 + (*ps->p - '0');
                if (m) digits++; /* zeros before the first significant digit do not count */
                exp10--;
            } else if (*ps->p != '0') {
                exact = 0;
            }
        }
    }
    if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
        integer = 0;
        ps->p++;
        int minus = 0;
        if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-')) minus = *ps->p++ == '-';
        if (!is_digit(ps)) return GIVE_UP;
        int64_t e = 0;
        for (; is_digit(ps); ps->p++)
            if (e < 100000) e = e * 10 + (*ps->p - '0');
        exp10 += minus ? -e : e;
    }
    if (out == NULL) return 0;
    if (m == 0 && exact) {
        *out = negative && !integer ? -0.0 : 0.0; /* Python: int("-0") is 0, float("-0.0") is -0.0 */
        return 0;
    }
    if (exact && m <= (1ULL << 53) && exp10 >= -22 && exp10 <= 22) {
        double v = (double)m; /* exact, as is the power of ten: one correctly rounded operation */
        v = exp10 >= 0 ? v * POW10[exp10] : v / POW10[-exp10];
        *out = negative ? -v : v;
        return 0;
    }
    double v;
    if (exact && extended_double(m, exp10, &v)) {
        *out = negative ? -v : v;
        return 0;
    }
    Py_ssize_t len = ps->p - start;
    char text[512];
    if (len >= (Py_ssize_t)sizeof text) return GIVE_UP;
    memcpy(text, start, len);
    text[len] = '\0';
    if (ps->released) PyEval_RestoreThread(ps->released); /* CPython's conversion needs the GIL */
    v = PyOS_string_to_double(text, NULL, NULL);
    int failed = v == -1.0 && PyErr_Occurred();
    if (failed) PyErr_Clear();
    if (ps->released) ps->released = PyEval_SaveThread();
    if (failed) return GIVE_UP;
    if (!isfinite(v)) return GIVE_UP; /* beyond the float range */
    *out = v;
    return 0;
}

/* [x1, y1, x2, y2] into buf. */
static int read_box(Parser *ps, Buf *buf) {
    double box[4];
    if (expect(ps, '[') < 0) return GIVE_UP;
    for (int i = 0; i < 4; i++) {
        if (read_number(ps, &box[i]) < 0) return GIVE_UP;
        if (more(ps, ']') != (i < 3)) return GIVE_UP;
    }
    return put(ps, buf, box, sizeof box);
}

static int skip_value(Parser *ps, int depth);

static int skip_container(Parser *ps, int depth, unsigned char close) {
    if (depth > MAX_DEPTH) return GIVE_UP;
    ps->p++;
    if (closes_at_once(ps, close)) return 0;
    int next;
    do {
        if (close == '}') {
            const char *key;
            Py_ssize_t len;
            if (read_text(ps, &key, &len) < 0 || expect(ps, ':') < 0) return GIVE_UP;
        }
        if (skip_value(ps, depth + 1) < 0) return GIVE_UP;
    } while ((next = more(ps, close)) == 1);
    return next;
}

static int skip_word(Parser *ps, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) return GIVE_UP;
    ps->p += n;
    return 0;
}

/* The value of a field this reader does not keep, checked as JSON. */
static int skip_value(Parser *ps, int depth) {
    skip_space(ps);
    if (ps->p >= ps->end) return GIVE_UP;
    const char *text;
    Py_ssize_t len;
    switch (*ps->p) {
        case '{': return skip_container(ps, depth, '}');
        case '[': return skip_container(ps, depth, ']');
        case '"': return read_text(ps, &text, &len);
        case 't': return skip_word(ps, "true");
        case 'f': return skip_word(ps, "false");
        case 'n': return skip_word(ps, "null");
        default: return read_number(ps, NULL);
    }
}

static inline int is_field(const char *key, Py_ssize_t len, const char *name) {
    return (size_t)len == strlen(name) && memcmp(key, name, len) == 0;
}

/* A list of items, each read by item(ps) (a proposal's box or verb); its length goes to counts. */
static int read_list(Parser *ps, int (*item)(Parser *), Buf *counts) {
    int64_t n = 0;
    int next;
    if (expect(ps, '[') < 0) return GIVE_UP;
    if (!closes_at_once(ps, ']')) {
        do {
            if (item(ps) < 0) return GIVE_UP;
            n++;
        } while ((next = more(ps, ']')) == 1);
        if (next < 0) return GIVE_UP;
    }
    return put_count(ps, counts, n);
}

static int read_part_box(Parser *ps) { return read_box(ps, &ps->part_box); }

static int read_verb(Parser *ps) {
    const char *text;
    Py_ssize_t len;
    return read_text(ps, &text, &len) < 0 ? GIVE_UP : put_code(ps, &ps->verb_codes, text, len, NULL);
}

/* One part's value: {"box": ..., "verb": ...} (any order, other fields skipped); in the list form each
 * holds a list (of proposals). */
static int read_part(Parser *ps) {
    int has_box = 0, has_verb = 0, next;
    if (expect(ps, '{') < 0 || closes_at_once(ps, '}')) return GIVE_UP;
    do {
        const char *key;
        Py_ssize_t len;
        if (read_text(ps, &key, &len) < 0 || expect(ps, ':') < 0) return GIVE_UP;
        if (is_field(key, len, "box")) {
            if (has_box++ && held_twice(ps, "box") < 0) return GIVE_UP;
            if ((ps->list_form ? read_list(ps, read_part_box, &ps->part_nbox) : read_part_box(ps)) < 0) return GIVE_UP;
        } else if (is_field(key, len, "verb")) {
            if (has_verb++ && held_twice(ps, "verb") < 0) return GIVE_UP;
            if ((ps->list_form ? read_list(ps, read_verb, &ps->part_nverb) : read_verb(ps)) < 0) return GIVE_UP;
        } else if (skip_value(ps, 0) < 0) {
            return GIVE_UP;
        }
    } while ((next = more(ps, '}')) == 1);
    return next == 0 && has_box && has_verb ? 0 : GIVE_UP;
}

/* A human's "parts": {name: part}, names unique. */
static int read_parts(Parser *ps, int64_t *count) {
    int32_t codes[MAX_PARTS];
    int n = 0, next;
    if (expect(ps, '{') < 0) return GIVE_UP;
    if (!closes_at_once(ps, '}')) {
        do {
            const char *name;
            Py_ssize_t len;
            if (n == MAX_PARTS || read_text(ps, &name, &len) < 0 || expect(ps, ':') < 0) return GIVE_UP;
            if (put_code(ps, &ps->part_codes, name, len, &codes[n]) < 0) return GIVE_UP;
            ps->part = (Text){name, len, NULL};
            for (int i = 0; i < n; i++)
                if (codes[i] == codes[n] && held_twice(ps, NULL) < 0) return GIVE_UP; /* equal texts: equal codes */
            if (read_part(ps) < 0) return GIVE_UP;
            n++;
        } while ((next = more(ps, '}')) == 1);
        if (next < 0) return GIVE_UP;
    }
    *count = n;
    return 0;
}

/* One human: {"box": [4 numbers], "parts": {...}} (any order, other fields skipped). */
static int read_human(Parser *ps) {
    int has_box = 0, has_parts = 0, next;
    int64_t parts = 0;
    if (expect(ps, '{') < 0 || closes_at_once(ps, '}')) return GIVE_UP;
    do {
        const char *key;
        Py_ssize_t len;
        if (read_text(ps, &key, &len) < 0 || expect(ps, ':') < 0) return GIVE_UP;
        ps->part.text = NULL;
        if (is_field(key, len, "box")) {
            if ((has_box++ && held_twice(ps, "box") < 0) || read_box(ps, &ps->human_box) < 0) return GIVE_UP;
        } else if (is_field(key, len, "parts")) {
            if ((has_parts++ && held_twice(ps, "parts") < 0) || read_parts(ps, &parts) < 0) return GIVE_UP;
        } else if (skip_value(ps, 0) < 0) {
            return GIVE_UP;
        }
    } while ((next = more(ps, '}')) == 1);
    if (next < 0 || !has_box || !has_parts) return GIVE_UP;
    return put_count(ps, &ps->human_parts, parts);
}

/* One frame's value: {"humans": [human, ...]} (other fields skipped). */
static int read_frame(Parser *ps) {
    int has_humans = 0, next;
    if (expect(ps, '{') < 0 || closes_at_once(ps, '}')) return GIVE_UP;
    do {
        const char *key;
        Py_ssize_t len;
        if (read_text(ps, &key, &len) < 0 || expect(ps, ':') < 0) return GIVE_UP;
        if (!is_field(key, len, "humans")) {
            if (skip_value(ps, 0) < 0) return GIVE_UP;
            continue;
        }
        if ((has_humans++ && held_twice(ps, "humans") < 0) || expect(ps, '[') < 0) return GIVE_UP;
        int64_t n = 0;
        if (!closes_at_once(ps, ']')) {
            int more_humans;
            do {
                ps->human = n;
                if (read_human(ps) < 0) return GIVE_UP;
                n++;
            } while ((more_humans = more(ps, ']')) == 1);
            if (more_humans < 0) return GIVE_UP;
        }
        ps->human = -1;
        ps->part.text = NULL;
        if (put_count(ps, &ps->frame_humans, n) < 0) return GIVE_UP;
    } while ((next = more(ps, '}')) == 1);
    return next == 0 && has_humans ? 0 : GIVE_UP;
}

/* One video's value: {frame: frame, ...}, frame keys unique. */
static int read_video(Parser *ps) {
    int64_t n = 0;
    int next;
    if (expect(ps, '{') < 0) return GIVE_UP;
    if (!closes_at_once(ps, '}')) {
        do {
            const char *key;
            Py_ssize_t len;
            int32_t code;
            if (read_text(ps, &key, &len) < 0 || expect(ps, ':') < 0) return GIVE_UP;
            if (put_code(ps, &ps->frame_codes, key, len, &code) < 0) return GIVE_UP;
            ps->frame_key = (Text){key, len, NULL};
            if (ps->frame_key_video[code] == ps->video && held_twice(ps, NULL) < 0) return GIVE_UP; /* a key twice */
            ps->frame_key_video[code] = ps->video;
            if (read_frame(ps) < 0) return GIVE_UP;
            n++;
        } while ((next = more(ps, '}')) == 1);
        if (next < 0) return GIVE_UP;
    }
    return put_count(ps, &ps->video_frames, n);
}

/* The first pass: the whole text (no Python objects made or touched, but for a slow number). */
static int read_file(Parser *ps) {
    int next;
    if (expect(ps, '{') < 0) return GIVE_UP;
    if (!closes_at_once(ps, '}')) {
        do {
            Text name = {NULL, 0, NULL};
            if (read_text(ps, &name.text, &name.len) < 0 || expect(ps, ':') < 0) return GIVE_UP;
            if (put(ps, &ps->video_names, &name, sizeof name) < 0 || read_video(ps) < 0) return GIVE_UP;
            ps->video++;
        } while ((next = more(ps, '}')) == 1);
        if (next < 0) return GIVE_UP;
    }
    skip_space(ps);
    return ps->p == ps->end ? 0 : GIVE_UP; /* nothing but white space after the object */
}

/* The second pass (with the GIL): a list of the str of each code, one str per distinct text (objs). */
static PyObject *list_of(const Buf *codes, PyObject **objs) {
    Py_ssize_t n = codes->len / (Py_ssize_t)sizeof(int32_t);
    const int32_t *code = (const int32_t *)codes->data;
    PyObject *list = PyList_New(n);
    for (Py_ssize_t i = 0; list != NULL && i < n; i++) PyList_SET_ITEM(list, i, Py_NewRef(objs[code[i]]));
    return list;
}

static PyObject *names_of(const Buf *refs) {
    Py_ssize_t n = refs->len / (Py_ssize_t)sizeof(Text);
    const Text *t = (const Text *)refs->data;
    PyObject *list = PyList_New(n);
    for (Py_ssize_t i = 0; list != NULL && i < n; i++) {
        PyObject *s = ascii_str(t[i].text, t[i].len);
        if (s == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, i, s);
    }
    return list;
}

static PyObject *to_bytearray(Buf *b) { return PyByteArray_FromStringAndSize(b->data ? b->data : "", b->len); }

static PyObject *columns(Parser *ps) {
    Py_ssize_t distinct = ps->texts.len / (Py_ssize_t)sizeof(Text);
    const Text *texts = (const Text *)ps->texts.data;
    PyObject **objs = PyMem_Calloc(distinct ? distinct : 1, sizeof(PyObject *));
    PyObject *out = objs != NULL ? PyDict_New() : NULL;
    if (out == NULL) {
        PyMem_Free(objs);
        return PyErr_Occurred() ? NULL : PyErr_NoMemory();
    }
    int failed = 0;
    for (Py_ssize_t c = 0; c < distinct && !failed; c++) {
        objs[c] = texts[c].given ? Py_NewRef(texts[c].given) : ascii_str(texts[c].text, texts[c].len);
        failed = objs[c] == NULL;
    }
    if (!failed) {
        struct {
            const char *name;
            PyObject *value;
        } items[] = {
            {"videos", names_of(&ps->video_names)},
            {"frame_key", list_of(&ps->frame_codes, objs)},
            {"part_name", list_of(&ps->part_codes, objs)},
            {ps->list_form ? "proposal_verb" : "part_verb", list_of(&ps->verb_codes, objs)},
            {"video_frames", to_bytearray(&ps->video_frames)},
            {"frame_humans", to_bytearray(&ps->frame_humans)},
            {"human_parts", to_bytearray(&ps->human_parts)},
            {"human_box", to_bytearray(&ps->human_box)},
            {ps->list_form ? "proposal_box" : "part_box", to_bytearray(&ps->part_box)},
            {"part_nbox", ps->list_form ? to_bytearray(&ps->part_nbox) : Py_NewRef(Py_None)},
            {"part_nverb", ps->list_form ? to_bytearray(&ps->part_nverb) : Py_NewRef(Py_None)},
        };
        for (size_t i = 0; i < sizeof items / sizeof items[0]; i++) {
            if (items[i].value == NULL || PyDict_SetItemString(out, items[i].name, items[i].value) < 0) failed = 1;
            Py_XDECREF(items[i].value);
        }
    }
    for (Py_ssize_t c = 0; c < distinct; c++) Py_XDECREF(objs[c]);
    PyMem_Free(objs);
    if (failed) Py_CLEAR(out);
    return out;
}

static PyObject *text_or_none(Text t) { return t.text != NULL ? ascii_str(t.text, t.len) : Py_NewRef(Py_None); }

/* The places recorded by held_twice: (video, frame key or None, human or -1, part or None, field or None). */
static PyObject *places(Parser *ps) {
    Py_ssize_t n = ps->repeats.len / (Py_ssize_t)sizeof(Place);
    const Place *place = (const Place *)ps->repeats.data;
    const Text *videos = (const Text *)ps->video_names.data;
    PyObject *out = PyList_New(n);
    for (Py_ssize_t i = 0; out != NULL && i < n; i++) {
        const Place *at = &place[i];
        PyObject *item = Py_BuildValue("(NNLNN)", ascii_str(videos[at->video].text, videos[at->video].len),
                                       text_or_none(at->frame), (long long)at->human, text_or_none(at->part),
                                       at->field ? PyUnicode_FromString(at->field) : Py_NewRef(Py_None));
        if (item == NULL) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, i, item);
    }
    return out;
}

static void release(Parser *ps) {
    PyMem_RawFree(ps->table);
    PyMem_RawFree(ps->frame_key_video);
    Buf *bufs[] = {&ps->texts,        &ps->video_names,  &ps->frame_codes, &ps->part_codes,
                   &ps->verb_codes,   &ps->video_frames, &ps->frame_humans, &ps->human_box,
                   &ps->human_parts,  &ps->part_box,     &ps->part_nbox,    &ps->part_nverb, &ps->repeats};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) PyMem_RawFree(bufs[i]->data);
}

static PyObject *parse(PyObject *module, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"text", "list_form", "shared", "repeats", NULL};
    Py_buffer text;
    int list_form, find_repeats = 0;
    PyObject *given = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*p|O$p:parse", keywords, &text, &list_form, &given,
                                     &find_repeats))
        return NULL;
    Parser ps = {0};
    ps.p = text.buf;
    ps.end = ps.p + text.len;
    ps.list_form = list_form;
    ps.find_repeats = find_repeats;
    ps.human = -1;
    ps.table = PyMem_RawMalloc(TABLE_SLOTS * sizeof(Slot));
    ps.frame_key_video = PyMem_RawMalloc(TABLE_SLOTS / 2 * sizeof(int64_t));
    PyObject *out = NULL;
    if (ps.table == NULL || ps.frame_key_video == NULL) {
        PyErr_NoMemory();
    } else {
        for (size_t i = 0; i < TABLE_SLOTS; i++) ps.table[i].code = -1;
        for (size_t i = 0; i < TABLE_SLOTS / 2; i++) ps.frame_key_video[i] = -1;
        if (given == NULL || register_given(&ps, given) == 0) {
            ps.released = PyEval_SaveThread();
            int read = read_file(&ps);
            PyEval_RestoreThread(ps.released);
            if (ps.no_memory)
                PyErr_NoMemory();
            else if (read != 0)
                out = Py_NewRef(Py_None);
            else
                out = find_repeats ? places(&ps) : columns(&ps);
        }
    }
    release(&ps);
    PyBuffer_Release(&text);
    return out;
}

static PyMethodDef methods[] = {
    {"parse", (PyCFunction)(void (*)(void))parse, METH_VARARGS | METH_KEYWORDS,
     "parse(text, list_form, shared=(), *, repeats=False) -> dict of columns, or None when the text is not a "
     "part file in the plain strict form (the caller then reads it another way). Strings equal to one of "
     "``shared`` come back as that object. The text is read without the GIL. With repeats=True, keys held "
     "twice are read on instead (the columns are not made) and their places come back: a list of (video, "
     "frame key or None, human or -1, part or None, field or None). Raises MemoryError only (and TypeError "
     "for arguments of the wrong type)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "tpslab._partfile",
                                    "A compiled reader of part files in their plain strict form.", -1, methods};

PyMODINIT_FUNC PyInit__partfile(void) {
    check_extended();
    PyObject *m = PyModule_Create(&module);
    /* The interface's version: tpslab.challenge uses a build of another one (a stale build in a source tree)
     * as not built at all. Raise it with any change to parse()'s arguments or results. */
    if (m != NULL && PyModule_AddIntConstant(m, "API", 2) < 0) Py_CLEAR(m);
    return m;
}
