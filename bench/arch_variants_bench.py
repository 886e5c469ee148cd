import sys, time, numpy as np, keras
sys.path.insert(0, '/work/main'); sys.path.insert(0, '/work/main/bench')
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
import os
if os.environ.get("BF16"): keras.mixed_precision.set_global_policy("mixed_bfloat16")
rng=np.random.default_rng(0); x=rng.random((2048,48,48,1),dtype=np.float32); y=rng.integers(0,7,2048)
for name in sys.argv[1:]:
    m=globals()[name](); m.compile(optimizer="adam",loss="sparse_categorical_crossentropy",metrics=["accuracy"])
    t=Timer(skip=3); m.fit(x,y,batch_size=64,epochs=1,callbacks=[t.callback],verbose=0)
    t0=time.perf_counter(); m.predict(x[:1024],batch_size=64,verbose=0); pr=1024/(time.perf_counter()-t0)
    print(name, macs.count_macs(m)/1e6, m.count_params(), "train img/s", round(t.images_per_s(64)), "predict img/s", round(pr), flush=True)
