"""Safetensors files between ebl and an independent reader and writer
written here from the format's specification: an 8-byte little-endian
header length N, N bytes of JSON {name: {dtype, shape, data_offsets},
"__metadata__": {str: str}}, then the data, little-endian, each tensor
at data_offsets relative to the end of the header, covering the data
without holes or overlaps."""
import json
import os
import shutil
import struct
import tempfile

from tap import case, done, run

TMP = tempfile.mkdtemp(prefix='ebl-safetensors-')
FORMATS = {'F32': ('f', 4), 'F64': ('d', 8), 'I32': ('i', 4),
           'U8': ('B', 1)}


def read_safetensors(path):
    """Returns ({name: (dtype, shape, values)}, metadata) read by the
    specification, checking every rule it states."""
    with open(path, 'rb') as f:
        blob = f.read()
    n = struct.unpack('<Q', blob[:8])[0]
    assert 8 + n <= len(blob), 'header length past the end'
    header = json.loads(blob[8:8 + n].decode('utf-8'))
    data = blob[8 + n:]
    meta = header.pop('__metadata__', {})
    assert all(isinstance(v, str) for v in meta.values())
    tensors, spans = {}, []
    for name, info in header.items():
        code, size = FORMATS[info['dtype']]
        begin, end = info['data_offsets']
        count = 1
        for s in info['shape']:
            count *= s
        assert end - begin == count * size, name
        values = struct.unpack(f'<{count}{code}', data[begin:end])
        tensors[name] = (info['dtype'], info['shape'], list(values))
        spans.append((begin, end))
    at = 0
    for begin, end in sorted(spans):
        assert begin == at, 'hole or overlap'
        at = end
    assert at == len(data), 'bytes after the last tensor'
    return tensors, meta, n


def write_safetensors(path, tensors, meta, pad=0):
    """Writes tensors {name: (dtype, shape, values)} in the given order,
    with the JSON spaced out and padded by pad spaces."""
    header, chunks, offset = {}, [], 0
    if meta is not None:
        header['__metadata__'] = meta
    for name, (dtype, shape, values) in tensors.items():
        code, size = FORMATS[dtype]
        raw = struct.pack(f'<{len(values)}{code}', *values)
        header[name] = {'dtype': dtype, 'shape': shape,
                        'data_offsets': [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, indent=1, ensure_ascii=True).encode()
    text += b' ' * pad
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)) + text + b''.join(chunks))


@case
def ebl_writes_what_the_specification_reads():
    path = os.path.join(TMP, 'from_ebl.safetensors')
    code = (f'ebl.save({path!r}, {{'
            'w = ebl.tensor{{1.5, -2}, {3, 4.25}}, '
            "i = ebl.tensor({7, -8, 2147483647}, 'int32'), "
            "u = ebl.tensor({0, 255}, 'uint8'), "
            "d = ebl.tensor({0.1}, 'float64'), "
            "['h\\u{e9}'] = ebl.tensor{{1, 2}, {3, 4}}:transpose(1, 2)}, "
            "{note = 'caf\\u{e9} \"q\"', n = 3})")
    rc, out, err = run('-e', code)
    assert rc == 0, err
    tensors, meta, n = read_safetensors(path)
    assert (8 + n) % 8 == 0
    assert tensors['w'] == ('F32', [2, 2], [1.5, -2.0, 3.0, 4.25])
    assert tensors['i'] == ('I32', [3], [7, -8, 2147483647])
    assert tensors['u'] == ('U8', [2], [0, 255])
    assert tensors['d'] == ('F64', [1], [0.1])
    assert tensors['h\u00e9'] == ('F32', [2, 2], [1.0, 3.0, 2.0, 4.0])
    assert meta == {'note': 'caf\u00e9 "q"', 'n': '3'}, meta


@case
def ebl_reads_what_the_specification_writes():
    path = os.path.join(TMP, 'from_python.safetensors')
    write_safetensors(path, {
        'b': ('U8', [3], [1, 2, 250]),
        'a': ('F64', [2], [-0.5, 1e300]),
        'c': ('I32', [2, 1], [-1, 5]),
        'e': ('F32', [0], []),
        'f': ('F32', [], [2.5]),
    }, {'k\u00fc': 'v\n'}, pad=5)
    code = (f'local t, m = ebl.load({path!r}) '
            "print(t.b:totable()[3], t.a:totable()[2], t.c:totable()[1][1], "
            "t.e:numel(), t.f:item(), t.f:dim(), t.a:dtype(), "
            "m['k\\u{fc}'] == 'v\\n')")
    rc, out, err = run('-e', code)
    assert rc == 0, err
    assert out.split() == ['250', '1e+300', '-1', '0', '2.5', '0',
                           'float64', 'true'], out


@case
def ebl_names_the_file_and_the_fault():
    path = os.path.join(TMP, 'overlap.safetensors')
    write_safetensors(path, {'a': ('U8', [2], [1, 2])}, None)
    with open(path, 'rb') as f:
        blob = f.read()
    n = struct.unpack('<Q', blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    header['a']['shape'] = [3]
    text = json.dumps(header).encode()
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)) + text + blob[8 + n:])
    rc, out, err = run('-e', f'ebl.load({path!r})')
    assert rc == 1
    assert (f"load: {path}: tensor 'a': dtype U8 and shape 3 need 3 bytes, "
            'data_offsets [0, 2] hold 2') in err, err


shutil.rmtree(TMP, ignore_errors=True)
done()
