"""PyTorch half of tests/io/pth.test.ts. torch (Debian's python3-torch 1.13) writes checkpoints for the TypeScript
reader, and reads back the ones the TypeScript writer made. Each command works in DIR and exchanges manifest.json.

  python3 pth_fixtures.py write DIR    # *.pth by torch.save (zip and legacy), crafted archives, expected contents
  python3 pth_fixtures.py check DIR    # torch.load the files listed in DIR/manifest.json; exit 1 listing mismatches

Expected objects travel as tagged JSON: {"dict": [[k, v], ...]}, {"list": [...]}, {"tuple": [...]}, {"int": "12"},
{"float": "<hex of big-endian double>"}, {"str": s}, {"bytes": hex}, {"set": [...]}, {"size": [..]}, null, true/false,
{"tensor": {dtype, shape, stride, offset, storage, requires_grad, hex}} where dtype is the on-disk torch dtype, hex the
contiguous values in the dtype the reader holds them in (float16/bfloat16 -> float32, int16/int8 -> int32) and
storage numbers the distinct storages (equal numbers must share memory).
"""
import collections, hashlib, json, os, pickle, pickletools, struct, sys, warnings, zipfile
import torch

warnings.filterwarnings('ignore', 'Duplicate name')

HOLD = {torch.float16: torch.float32, torch.bfloat16: torch.float32, torch.int16: torch.int32, torch.int8: torch.int32}
NAMES = {torch.float32: 'float32', torch.float64: 'float64', torch.float16: 'float16', torch.bfloat16: 'bfloat16',
         torch.int64: 'int64', torch.int32: 'int32', torch.int16: 'int16', torch.int8: 'int8', torch.uint8: 'uint8',
         torch.bool: 'bool'}
DTYPES = {v: k for k, v in NAMES.items()}


def enc(v, ptrs):
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, int):
        return {'int': str(v)}
    if isinstance(v, float):
        return {'float': struct.pack('>d', v).hex()}
    if isinstance(v, str):
        return {'str': v}
    if isinstance(v, bytes):
        return {'bytes': v.hex()}
    if isinstance(v, torch.Tensor):
        ptr = v.storage().data_ptr()
        ptrs.setdefault(ptr, len(ptrs))
        held = v.detach().to(HOLD.get(v.dtype, v.dtype)).contiguous()
        return {'tensor': {'dtype': NAMES[v.dtype], 'shape': list(v.shape), 'stride': list(v.stride()),
                           'offset': v.storage_offset(), 'storage': ptrs[ptr], 'requires_grad': v.requires_grad,
                           **held_bytes(held.numpy().tobytes())}}
    if isinstance(v, torch.Size):
        return {'size': list(v)}
    if isinstance(v, tuple):
        return {'tuple': [enc(x, ptrs) for x in v]}
    if isinstance(v, list):
        return {'list': [enc(x, ptrs) for x in v]}
    if isinstance(v, (set, frozenset)):
        return {'set': [enc(x, ptrs) for x in v]}
    if isinstance(v, dict):
        return {'dict': [[enc(k, ptrs), enc(x, ptrs)] for k, x in v.items()]}
    raise TypeError(type(v))


def held_bytes(b):
    """Small tensors travel as hex, large ones as a SHA-256 of the same bytes."""
    return {'hex': b.hex()} if len(b) <= 4096 else {'sha256': hashlib.sha256(b).hexdigest()}


def specials():
    return torch.tensor([0.0, -0.0, 1.0, -2.5, float('inf'), float('-inf'), float('nan'), 1e-45, 3.4e38, 6.1e-5,
                         65504.0, 1e-7], dtype=torch.float64)


def small_model():
    torch.manual_seed(1)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                               torch.nn.Flatten(), torch.nn.Linear(4 * 2 * 2, 3))


def objects():
    import torchvision
    torch.manual_seed(0)
    r18 = torchvision.models.resnet18()
    for m in r18.modules():  # non-trivial BN statistics and counters
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.num_batches_tracked.fill_(12345)
    dtypes = {
        'float32': specials().float(), 'float64': specials(), 'float16': specials().half(),
        'bfloat16': specials().bfloat16(), 'int64': torch.tensor([-2**63, 2**63 - 1, 0, -1, 2**53 + 1]),
        'int32': torch.tensor([-2**31, 2**31 - 1, 7], dtype=torch.int32),
        'int16': torch.tensor([-32768, 32767, -1], dtype=torch.int16),
        'int8': torch.tensor([-128, 127, 0], dtype=torch.int8), 'uint8': torch.arange(256, dtype=torch.uint8),
        'bool': torch.tensor([True, False, True]), 'all_f16': torch.arange(-32768, 32768, dtype=torch.int32)
        .to(torch.int16).view(torch.float16), 'all_bf16': torch.arange(-32768, 32768, dtype=torch.int32)
        .to(torch.int16).view(torch.bfloat16),
    }
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    half = torch.randn(4, 6).half()
    layouts = collections.OrderedDict([
        ('base', base), ('row', base[1]), ('offset_view', base.view(-1)[5:11]), ('transposed', base.t()),
        ('cols', base[:, 1:4]), ('step', base[::2, ::3]), ('expanded', torch.tensor([3.0]).expand(4, 5)),
        ('scalar', torch.tensor(2.5)), ('empty', torch.zeros(0, 3)), ('half', half), ('half_view', half[1:3].t()),
        ('long_view', torch.arange(10)[3:7]), ('same_object', base),
    ])
    model = small_model()
    dp = torch.nn.DataParallel(model)
    sgd = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    adam = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(2, 3, 4, 4)).sum().backward()
    sgd.step()
    adam.step()
    checkpoint = {
        'epoch': 7, 'model_state_dict': dp.state_dict(), 'optimizer_state_dict': sgd.state_dict(),
        'adam': adam.state_dict(), 'loss': 0.25, 'name': 'resnet', 'note': None, 'flags': [True, False],
        'pair': (1, 'a', None, 2.5), 'big': 2**70, 'neg': -(2**40), 'blob': b'\x00\xff', 'sizes': torch.Size([2, 3]),
        'nested': {'a': {'b': [1, [2, [3, {'c': ()}]]]}}, 'ключ': 'значение', '__proto__': 1, 5: 'int key',
        'tags': {'x', 'y'},
    }
    sd = small_model().state_dict()
    return {
        'resnet18.pth': r18.state_dict(), 'dtypes.pth': dtypes, 'layouts.pth': layouts, 'checkpoint.pth': checkpoint,
        'parameters.pth': {'w': torch.nn.Parameter(torch.randn(3)),
                           'frozen': torch.nn.Parameter(torch.randn(2), requires_grad=False)},
        'sd_state_dict.pth': {'state_dict': sd, 'epoch': 1}, 'sd_model.pth': {'model': sd, 'args': {'lr': 0.1}},
        'sd_net.pth': {'net': sd, 'acc': 0.9}, 'sd_model_state_dict.pth': {'model_state_dict': sd, 'epoch': 2},
        'sd_module.pth': dp.state_dict(), 'not_sd.pth': {'epoch': 3, 'lr': 0.1, 'model': 'resnet18'},
    }


def rewrite_zip(src, dst, transform, compression=zipfile.ZIP_STORED):
    """Copy a torch zip with Python's zipfile (unaligned data, its own headers); transform(name, data) -> list of
    (name, data, compress_type)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, 'w', compression) as zout:
        for info in zin.infolist():
            for name, data, how in transform(info.filename, zin.read(info.filename)):
                zout.writestr(zipfile.ZipInfo(name), data, compress_type=how)


def write(d):
    manifest = {}
    for name, obj in objects().items():
        for legacy in (False, True):
            fname = name.replace('.pth', '_legacy.pth') if legacy else name
            torch.save(obj, os.path.join(d, fname), _use_new_zipfile_serialization=not legacy)
            manifest[fname] = {'format': 'legacy' if legacy else 'zip', 'expected': enc(obj, {})}
    small = {'w': torch.randn(2, 3), 'n': torch.tensor(4), 'names': ['a', 'b'], 'h': torch.randn(3).half(),
             's': torch.tensor([-5, 300], dtype=torch.int16)}
    for proto in (4, 5):
        fname = 'protocol%d.pth' % proto
        torch.save(small, os.path.join(d, fname), pickle_protocol=proto)
        manifest[fname] = {'format': 'zip', 'expected': enc(small, {})}
    src = os.path.join(d, 'protocol4.pth')

    def big_endian(name, data):
        if name.endswith('/data.pkl'):
            return [(name, data, zipfile.ZIP_STORED), (name.replace('data.pkl', 'byteorder'), b'big', zipfile.ZIP_STORED)]
        if '/data/' in name:  # swap every item to big-endian; the item size comes from the storage it holds
            size = {'w': 4, 'n': 8, 'h': 2, 's': 2}[storage_names[name.rsplit('/', 1)[1]]]
            data = b''.join(data[i:i + size][::-1] for i in range(0, len(data), size))
        return [(name, data, zipfile.ZIP_STORED)]
    storage_names = {}
    for k, t in small.items():  # storage keys follow first use in the pickle: dict order here
        if isinstance(t, torch.Tensor):
            storage_names[str(len(storage_names))] = k
    rewrite_zip(src, os.path.join(d, 'big_endian.pth'), big_endian)
    manifest['big_endian.pth'] = {'format': 'zip', 'expected': enc(small, {})}
    rewrite_zip(src, os.path.join(d, 'deflated_pkl.pth'),
                lambda n, b: [(n, b, zipfile.ZIP_DEFLATED if n.endswith('.pkl') else zipfile.ZIP_STORED)])
    manifest['deflated_pkl.pth'] = {'format': 'zip', 'expected': enc(small, {})}

    # plain pickles of every protocol torch may use (no torch globals): the opcode machine by itself
    shared = [1, 2]
    plain = collections.OrderedDict([
        ('ints', [0, 1, 255, 256, 65535, 65536, -1, -2**31, 2**31 - 1, 2**31, 2**53, 2**53 + 1, -2**63, 2**64,
                  2**3000, -2**3000]),
        ('floats', [0.0, -0.0, 1.5, float('inf'), float('-inf'), float('nan'), 5e-324, 0.1]),
        ('strs', ['', 'a', 'ключ', '\U0001f600', 'x' * 300]), ('bytes', [b'', b'\x00\xff' * 200]),
        ('tuples', [(), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4)]), ('set', {1, 2}), ('frozenset', frozenset({3})),
        ('od', collections.OrderedDict(a=1)), ('none', None), ('bools', [True, False]), ('shared', [shared, shared]),
        ('long_list', list(range(2500))), ('__proto__', 'p'), ('constructor', {'toString': 1}), (7, 'int key'),
    ])
    for proto in (2, 3, 4, 5):
        with open(os.path.join(d, 'plain_p%d.pkl' % proto), 'wb') as f:
            pickle.dump(plain, f, protocol=proto)

    # files every reader must refuse, each with the message it must give
    bad = {}
    rewrite_zip(src, os.path.join(d, 'bad_deflated_storage.pth'), lambda n, b: [(n, b, zipfile.ZIP_DEFLATED)])
    bad['bad_deflated_storage.pth'] = 'DEFLATE-compressed'
    rewrite_zip(src, os.path.join(d, 'bad_duplicate.pth'), lambda n, b: [(n, b, 0)] * (2 if n.endswith('/0') else 1))
    bad['bad_duplicate.pth'] = 'appears twice'
    rewrite_zip(src, os.path.join(d, 'bad_traversal.pth'),
                lambda n, b: [(n, b, 0)] + ([('protocol4/../../evil', b'x', 0)] if n.endswith('.pkl') else []))
    bad['bad_traversal.pth'] = 'path tricks'
    rewrite_zip(src, os.path.join(d, 'bad_missing_storage.pth'), lambda n, b: [] if n.endswith('/data/1') else [(n, b, 0)])
    bad['bad_missing_storage.pth'] = 'has none'

    class Evil:
        def __reduce__(self):
            return (os.system, ('touch %s' % os.path.join(d, 'PWNED'),))
    torch.save({'x': Evil()}, os.path.join(d, 'bad_os_system.pth'))
    bad['bad_os_system.pth'] = 'pickle global "posix.system" is not allowed'
    torch.save({'x': Evil()}, os.path.join(d, 'bad_os_system_legacy.pth'), _use_new_zipfile_serialization=False)
    bad['bad_os_system_legacy.pth'] = 'pickle global "posix.system" is not allowed'
    torch.save(torch.nn.Linear(2, 2), os.path.join(d, 'bad_module.pth'))
    bad['bad_module.pth'] = 'pickle global "torch.nn.modules.linear.Linear" is not allowed'
    torch.save({'dev': torch.device('cpu')}, os.path.join(d, 'bad_device.pth'))
    bad['bad_device.pth'] = 'pickle global "torch.device" is not allowed'
    torch.save({'z': torch.zeros(2, dtype=torch.complex64)}, os.path.join(d, 'bad_complex.pth'))
    bad['bad_complex.pth'] = 'pickle global "torch.ComplexFloatStorage" is not allowed'
    torch.jit.script(torch.nn.Linear(2, 2)).save(os.path.join(d, 'bad_torchscript.pt'))
    bad['bad_torchscript.pt'] = 'TorchScript'
    with open(os.path.join(d, 'manifest.json'), 'w') as f:
        json.dump({'files': manifest, 'bad': bad, 'plain': enc(plain, {})}, f)
    print('OK', len(manifest), len(bad))


# ---- checking what TypeScript wrote -----------------------------------------------------------------------------

WEIGHTS_ONLY_OPS = {'PROTO', 'EMPTY_DICT', 'EMPTY_LIST', 'EMPTY_TUPLE', 'MARK', 'SETITEM', 'SETITEMS', 'APPEND',
                    'APPENDS', 'TUPLE', 'TUPLE1', 'TUPLE2', 'TUPLE3', 'BININT', 'BININT1', 'BININT2', 'LONG1',
                    'BINUNICODE', 'NONE', 'NEWTRUE', 'NEWFALSE', 'GLOBAL', 'REDUCE', 'BINPERSID', 'BINPUT',
                    'LONG_BINPUT', 'BINGET', 'LONG_BINGET', 'STOP'}


def compare(got, exp, path, errs, storages):
    """Append to errs every difference between a torch.load result and a tagged expectation."""
    def bad(msg):
        errs.append('%s: %s' % (path, msg))
    if exp is None or isinstance(exp, bool):
        if got is not exp:
            bad('expected %r but got %r' % (exp, got))
        return
    (tag, e), = exp.items()
    if tag == 'int':
        if type(got) is not int or got != int(e):
            bad('expected int %s but got %r' % (e, got))
    elif tag == 'float':
        want = struct.unpack('>d', bytes.fromhex(e))[0]
        if type(got) is not float or struct.pack('>d', got) != struct.pack('>d', want):
            bad('expected float %r but got %r' % (want, got))
    elif tag == 'str':
        if got != e:
            bad('expected %r but got %r' % (e, got))
    elif tag in ('list', 'tuple'):
        if type(got) is not (list if tag == 'list' else tuple) or len(got) != len(e):
            return bad('expected a %s of %d but got %r' % (tag, len(e), type(got)))
        for i, (g, x) in enumerate(zip(got, e)):
            compare(g, x, '%s[%d]' % (path, i), errs, storages)
    elif tag == 'dict':
        state_dict = len(e) > 0 and all('tensor' in (v or {}) for _, v in e)
        want_type = collections.OrderedDict if state_dict else dict
        if type(got) is not want_type:
            return bad('expected %s but got %s' % (want_type.__name__, type(got).__name__))
        keys = [decode_key(k) for k, _ in e]
        if list(got.keys()) != keys:
            return bad('keys %r != expected %r' % (list(got.keys())[:10], keys[:10]))
        for (k, x) in zip(keys, (v for _, v in e)):
            compare(got[k], x, '%s[%r]' % (path, k), errs, storages)
    elif tag == 'tensor':
        if not isinstance(got, torch.Tensor):
            return bad('expected a tensor but got %r' % type(got))
        want = (DTYPES[e['dtype']], e['shape'], e['stride'], e['offset'])
        have = (got.dtype, list(got.shape), list(got.stride()), got.storage_offset())
        if want != have:
            return bad('expected (dtype, shape, stride, offset) %r but got %r' % (want, have))
        if got.requires_grad:
            bad('expected requires_grad False')
        if held_bytes(got.contiguous().numpy().tobytes()) != {k: e[k] for k in ('hex', 'sha256') if k in e}:
            bad('values differ')
        ptr = got.storage().data_ptr()
        if storages.setdefault(e['storage'], ptr) != ptr:
            bad('expected to share storage %d with an earlier tensor but it does not' % e['storage'])
    else:
        bad('unknown tag %s' % tag)


def decode_key(k):
    if k is None or isinstance(k, bool):
        return k
    (tag, v), = k.items()
    return int(v) if tag == 'int' else struct.unpack('>d', bytes.fromhex(v))[0] if tag == 'float' else v


def check(d):
    manifest = json.load(open(os.path.join(d, 'manifest.json')))
    errs = []
    for fname, spec in manifest['files'].items():
        path = os.path.join(d, fname)
        with zipfile.ZipFile(path) as z:
            if z.testzip() is not None:
                errs.append('%s: zipfile reports a bad CRC' % fname)
            pkl = [n for n in z.namelist() if n.endswith('/data.pkl')]
            ops = {op.name for op, _, _ in pickletools.genops(z.read(pkl[0]))}
        extra = ops - WEIGHTS_ONLY_OPS
        if extra - {'BINFLOAT'}:
            errs.append('%s: opcodes outside torch weights_only: %s' % (fname, sorted(extra)))
        try:
            obj = torch.load(path, weights_only=True)
        except Exception as ex:  # torch 1.13's weights_only unpickler has no BINFLOAT, even for torch's own files
            if 'BINFLOAT' in extra and 'Unsupported operand 71' in str(ex):
                obj = torch.load(path)
            else:
                errs.append('%s: torch.load(weights_only=True) failed: %s' % (fname, ex))
                continue
        if 'BINFLOAT' not in extra and 'Unsupported operand 71' in str(obj):
            errs.append('%s: unexpected' % fname)
        compare(obj, spec['expected'], fname, errs, {})
        if 'same_as' in spec:  # a state dict read and written back must equal the one torch wrote
            ref = torch.load(os.path.join(d, spec['same_as']))
            if list(ref.keys()) != list(obj.keys()):
                errs.append('%s: keys differ from %s' % (fname, spec['same_as']))
            for k in ref:
                if not (ref[k].dtype == obj[k].dtype and torch.equal(ref[k], obj[k])):
                    errs.append('%s: %s differs from %s' % (fname, k, spec['same_as']))
    for e in errs:
        print('MISMATCH', e)
    print('OK' if not errs else 'FAILED', len(manifest['files']))
    sys.exit(1 if errs else 0)


if __name__ == '__main__':
    {'write': write, 'check': check}[sys.argv[1]](sys.argv[2])
