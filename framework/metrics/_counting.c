/* The request counters' receivers, compiled: framework.metrics._counting.
 *
 * framework/metrics/__init__.py connects these three functions instead of its
 * Python receivers when this extension was built (it is optional: without a
 * C compiler the package installs without it and counts in Python). They do
 * what the Python receivers do, in fewer instructions: no frame, no keyword
 * dict, the slots written through a pointer.
 *
 * The slots are the process's counters (WorkerCounters.slots, a memoryview
 * of the memory-mapped file or of a bytearray): use() holds a buffer of them,
 * so they cannot be unmapped while a receiver may write them (closing them
 * first raises BufferError). Until use() was given slots, a receiver calls
 * the opener that configure() was given, which opens the counters and calls
 * use(); after a fork the Python side calls use(None) in the child, so a
 * child never counts into its parent's file.
 *
 * Every receiver runs with the GIL held and calls no Python code between
 * reading and writing a slot, so an update is never lost to another thread
 * of this process: the receivers need no lock.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MAX_BOUNDS 1024

static Py_buffer held;          /* the slots, while in use */
static int in_use = 0;
static uint64_t *slots = NULL;
static double *seconds = NULL;  /* the same memory, as doubles */

static Py_ssize_t started_slot = -1;
static Py_ssize_t exception_slot = -1;
static Py_ssize_t duration_slot = -1;
static Py_ssize_t max_slot = -1;
static Py_ssize_t buckets_slot = -1;
static double bounds[MAX_BOUNDS];
static Py_ssize_t bound_count = 0;
static double max_seconds = 0.0;
static PyObject *opener = NULL;
static PyObject *duration_name = NULL;  /* "duration", interned */

static int
ensure_open(void)
{
    PyObject *result;

    if (in_use) {
        return 0;
    }
    if (opener == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the counters were not configured");
        return -1;
    }
    result = PyObject_CallNoArgs(opener);
    if (result == NULL) {
        return -1;
    }
    Py_DECREF(result);
    if (!in_use) {
        PyErr_SetString(PyExc_RuntimeError, "the counters' opener gave no slots");
        return -1;
    }
    return 0;
}

static void
release(void)
{
    if (in_use) {
        in_use = 0;
        slots = NULL;
        seconds = NULL;
        PyBuffer_Release(&held);
    }
}

PyDoc_STRVAR(configure_doc,
"configure($module, /, started, exception, duration, maximum, buckets, bounds,\n"
"          max_seconds, opener)\n"
"--\n"
"\n"
"Set the slots' layout, the histogram's bounds and the opener.");

static PyObject *
configure(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"started", "exception", "duration", "maximum",
                            "buckets", "bounds", "max_seconds", "opener", NULL};
    Py_ssize_t started, exception, duration, maximum, buckets, count, i;
    PyObject *sequence, *fast, *callable;
    double limit;
    double given[MAX_BOUNDS];

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "nnnnnOdO:configure", names,
                                     &started, &exception, &duration, &maximum,
                                     &buckets, &sequence, &limit, &callable)) {
        return NULL;
    }
    if (started < 0 || exception < 0 || duration < 0 || maximum < 0
        || buckets < 0) {
        PyErr_SetString(PyExc_ValueError, "a slot index is negative");
        return NULL;
    }
    if (!PyCallable_Check(callable)) {
        PyErr_SetString(PyExc_TypeError, "the opener must be callable");
        return NULL;
    }
    fast = PySequence_Fast(sequence, "the bounds must be a sequence");
    if (fast == NULL) {
        return NULL;
    }
    count = PySequence_Fast_GET_SIZE(fast);
    if (count > MAX_BOUNDS) {
        Py_DECREF(fast);
        PyErr_SetString(PyExc_ValueError, "too many bounds");
        return NULL;
    }
    for (i = 0; i < count; i++) {
        double bound = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(fast, i));
        if (bound == -1.0 && PyErr_Occurred()) {
            Py_DECREF(fast);
            return NULL;
        }
        if (i > 0 && !(bound > given[i - 1])) {
            Py_DECREF(fast);
            PyErr_SetString(PyExc_ValueError, "the bounds must increase");
            return NULL;
        }
        given[i] = bound;
    }
    Py_DECREF(fast);
    release();
    memcpy(bounds, given, (size_t)count * sizeof(double));
    bound_count = count;
    started_slot = started;
    exception_slot = exception;
    duration_slot = duration;
    max_slot = maximum;
    buckets_slot = buckets;
    max_seconds = limit;
    Py_INCREF(callable);
    Py_XSETREF(opener, callable);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(use_doc,
"use($module, slots, /)\n"
"--\n"
"\n"
"Count into ``slots`` (a writable buffer of 64-bit slots) from now on;\n"
"``None``: let go of the slots, and open them anew on the next count.");

static PyObject *
use(PyObject *module, PyObject *arg)
{
    Py_buffer view;
    Py_ssize_t needed;

    if (arg == Py_None) {
        release();
        Py_RETURN_NONE;
    }
    if (opener == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the counters were not configured");
        return NULL;
    }
    if (PyObject_GetBuffer(arg, &view, PyBUF_WRITABLE) < 0) {
        return NULL;
    }
    needed = Py_MAX(Py_MAX(started_slot, exception_slot),
                    Py_MAX(duration_slot, max_slot));
    needed = Py_MAX(needed, buckets_slot + bound_count) + 1;
    if (view.len < needed * 8 || ((uintptr_t)view.buf % 8) != 0) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError,
                        "the slots are too small for the layout, or unaligned");
        return NULL;
    }
    release();
    held = view;
    slots = (uint64_t *)view.buf;
    seconds = (double *)view.buf;
    in_use = 1;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(request_started_doc,
"request_started($module, /, *args, **kwargs)\n"
"--\n"
"\n"
"Count one request_started.");

/* Add one to a slot (once the slots are open); the two plain counters. */
static PyObject *
count_one(Py_ssize_t slot)
{
    if (!in_use && ensure_open() < 0) {
        return NULL;
    }
    slots[slot] += 1;
    Py_RETURN_NONE;
}

static PyObject *
request_started(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
                PyObject *kwnames)
{
    return count_one(started_slot);
}

PyDoc_STRVAR(got_request_exception_doc,
"got_request_exception($module, /, *args, **kwargs)\n"
"--\n"
"\n"
"Count one got_request_exception.");

static PyObject *
got_request_exception(PyObject *module, PyObject *const *args,
                      Py_ssize_t nargs, PyObject *kwnames)
{
    return count_one(exception_slot);
}

PyDoc_STRVAR(request_finished_doc,
"request_finished($module, /, *args, **kwargs)\n"
"--\n"
"\n"
"Count one request_finished and sort its duration into the histogram.");

static PyObject *
request_finished(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
                 PyObject *kwnames)
{
    PyObject *value = NULL;
    Py_ssize_t count, i, low, high;
    double duration;

    count = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    /* PERF: the senders pass the interned name; compare pointers first. */
    for (i = 0; i < count; i++) {
        if (PyTuple_GET_ITEM(kwnames, i) == duration_name) {
            value = args[nargs + i];
            break;
        }
    }
    if (value == NULL) {
        for (i = 0; i < count; i++) {
            PyObject *name = PyTuple_GET_ITEM(kwnames, i);
            if (PyUnicode_Check(name)
                && PyUnicode_Compare(name, duration_name) == 0) {
                value = args[nargs + i];
                break;
            }
        }
    }
    if (value == NULL) {
        PyErr_SetString(PyExc_TypeError,
                        "request_finished() needs the keyword argument 'duration'");
        return NULL;
    }
    if (PyFloat_CheckExact(value)) {
        duration = PyFloat_AS_DOUBLE(value);
    }
    else {
        duration = PyFloat_AsDouble(value);
        if (duration == -1.0 && PyErr_Occurred()) {
            return NULL;
        }
    }
    /* NaN too: it would stick in the sum. */
    if (!(duration >= 0.0 && duration < max_seconds)) {
        PyObject *shown = PyFloat_FromDouble(duration);
        if (shown != NULL) {
            PyErr_Format(PyExc_ValueError,
                         "request_finished sent an impossible duration: %R",
                         shown);
            Py_DECREF(shown);
        }
        return NULL;
    }
    if (!in_use && ensure_open() < 0) {
        return NULL;
    }
    seconds[duration_slot] += duration;
    if (duration > seconds[max_slot]) {
        seconds[max_slot] = duration;
    }
    /* bisect_left: the first bound >= duration, else past the last one. */
    low = 0;
    high = bound_count;
    while (low < high) {
        Py_ssize_t middle = (low + high) / 2;
        if (bounds[middle] < duration) {
            low = middle + 1;
        }
        else {
            high = middle;
        }
    }
    slots[buckets_slot + low] += 1;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"configure", (PyCFunction)(void (*)(void))configure,
     METH_VARARGS | METH_KEYWORDS, configure_doc},
    {"use", use, METH_O, use_doc},
    {"request_started", (PyCFunction)(void (*)(void))request_started,
     METH_FASTCALL | METH_KEYWORDS, request_started_doc},
    {"request_finished", (PyCFunction)(void (*)(void))request_finished,
     METH_FASTCALL | METH_KEYWORDS, request_finished_doc},
    {"got_request_exception", (PyCFunction)(void (*)(void))got_request_exception,
     METH_FASTCALL | METH_KEYWORDS, got_request_exception_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "framework.metrics._counting",
    "The request counters' receivers, compiled (see framework.metrics).",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__counting(void)
{
    duration_name = PyUnicode_InternFromString("duration");
    if (duration_name == NULL) {
        return NULL;
    }
    return PyModule_Create(&module_def);
}
