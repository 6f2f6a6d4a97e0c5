"""ITK's console output is captured while lungai reads, without ever losing the process's real stderr."""

from __future__ import annotations

import os
import threading

from lungai.io.itk_messages import captured_stderr, itk_error_detail


def test_captures_what_is_written_to_descriptor_2(capfd):
    with captured_stderr() as lines:
        os.write(2, b"MetaImage: data not read completely\n")
    assert lines == ["MetaImage: data not read completely"]
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"


def test_nested_and_concurrent_captures_keep_the_real_stderr(capfd):
    inner_lines = []
    with captured_stderr() as outer:
        def other_thread():
            with captured_stderr() as inner:  # already capturing: passes through, keeps fd 2 intact
                inner_lines.append(inner)
                os.write(2, b"from thread\n")

        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join()
        os.write(2, b"from main\n")
    assert inner_lines == [[]] and outer == ["from thread", "from main"]
    os.write(2, b"still here\n")
    assert capfd.readouterr().err == "still here\n"


def test_error_detail_keeps_the_informative_lines():
    exc = RuntimeError("Exception thrown in SimpleITK ImageFileReader_Execute: /src/itkNrrdImageIO.cxx:935:\n"
                       "ITK ERROR: NrrdImageIO(0x1): Read: Error reading /tmp/t.nrrd:\n"
                       "[nrrd] _nrrdEncodingGzip_read: expected 420 bytes but received 351\n")
    assert itk_error_detail(exc) == ("Read: Error reading /tmp/t.nrrd:; [nrrd] _nrrdEncodingGzip_read: expected "
                                     "420 bytes but received 351")
