"""Which efficient architecture trains fastest on this CPU at <= 1/10 of the proposed CNN's
multiply-adds: training images/s (Adam, batch 64, random faces, first 3 batches untimed)
and predict images/s of six candidates, in one process so they compare on the same
machine state. Prints one line per variant: name, M multiply-adds, parameters, train
images/s, predict images/s.

    .venv/bin/python bench/arch_variants_bench.py A B C D G H       # float32
    BF16=1 .venv/bin/python bench/arch_variants_bench.py C G H      # keras mixed_bfloat16

  A  mini-Xception style: conv 32 + separable 32 at 48x48, three separable residual modules
     (64, 128, 256; three separable convs each) at 24 -> 12 -> 6
  B  A without the 48x48 separable conv
  C  full 3x3 convs: conv 32 at 48x48, residual modules of two convs (32, 64, 128)
  D  C wider (24 stem; 40, 80, 160): over the 1/10 bound
  G  full convs at 24x24 (32), separable modules at 12 and 6 (128, 256)
  H  C with 160 filters in the last module: models/compact_resnet.py as shipped
Results: bench/results/efficient_model.md.
"""
import os, sys, time
import numpy as np, keras
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE)); sys.path.insert(0, HERE)
from trainer_bench import Timer
from models import macs
L = keras.layers
def bnr(x): return L.Activation("relu")(L.BatchNormalization()(x))
def sep(x,f): return L.SeparableConv2D(f,3,padding="same",use_bias=False)(x)
def conv(x,f,k=3,s=1): return L.Conv2D(f,k,strides=s,padding="same",use_bias=False)(x)
def module(x,f,kind,n=3):
    sc = L.BatchNormalization()(conv(x,f,1,2))
    for i in range(n):
        x = sep(x,f) if kind=="sep" else conv(x,f)
        x = bnr(x) if i<n-1 else L.BatchNormalization()(x)
    x = L.MaxPooling2D(3,2,padding="same")(x)
    return L.Activation("relu")(L.Add()([x,sc]))
def head(x,i):
    x=L.GlobalAveragePooling2D()(x); x=L.Dropout(0.4)(x)
    return keras.Model(i, L.Dense(7,activation="softmax")(x))
def A():
    i=keras.Input((48,48,1)); x=bnr(conv(i,32)); x=bnr(sep(x,32)); x=L.MaxPooling2D(2)(x)
    for f in (64,128,256): x=module(x,f,"sep")
    return head(x,i)
def B():  # no 48x48 sep
    i=keras.Input((48,48,1)); x=bnr(conv(i,32)); x=L.MaxPooling2D(2)(x)
    for f in (64,128,256): x=module(x,f,"sep")
    return head(x,i)
def C():  # regular convs, narrow
    i=keras.Input((48,48,1)); x=bnr(conv(i,32)); x=L.MaxPooling2D(2)(x)
    x=module(x,32,"conv",2); x=module(x,64,"conv",2); x=module(x,128,"conv",2)
    return head(x,i)
def D():  # regular convs: 24->12 with 32, 12->6 64, 6->3 160
    i=keras.Input((48,48,1)); x=bnr(conv(i,24)); x=L.MaxPooling2D(2)(x)
    x=module(x,40,"conv",2); x=module(x,80,"conv",2); x=module(x,160,"conv",2)
    return head(x,i)
def G():
    i=keras.Input((48,48,1)); x=bnr(conv(i,32)); x=L.MaxPooling2D(2)(x)
    x=module(x,32,"conv",2); x=module(x,128,"sep",3); x=module(x,256,"sep",3)
    return head(x,i)
def H():  # C with wider last stage
    i=keras.Input((48,48,1)); x=bnr(conv(i,32)); x=L.MaxPooling2D(2)(x)
    x=module(x,32,"conv",2); x=module(x,64,"conv",2); x=module(x,160,"conv",2)
    return head(x,i)
if os.environ.get("BF16"): keras.mixed_precision.set_global_policy("mixed_bfloat16")
rng=np.random.default_rng(0); x=rng.random((2048,48,48,1),dtype=np.float32); y=rng.integers(0,7,2048)
for name in sys.argv[1:]:
    m=globals()[name](); m.compile(optimizer="adam",loss="sparse_categorical_crossentropy",metrics=["accuracy"])
    t=Timer(skip=3); m.fit(x,y,batch_size=64,epochs=1,callbacks=[t.callback],verbose=0)
    t0=time.perf_counter(); m.predict(x[:1024],batch_size=64,verbose=0); pr=1024/(time.perf_counter()-t0)
    print(name, macs.count_macs(m)/1e6, m.count_params(), "train img/s", round(t.images_per_s(64)), "predict img/s", round(pr), flush=True)
