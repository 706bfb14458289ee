import minigrad as mg
from minigrad import nn

mg.manual_seed(0)
model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
x = mg.randn(5, 3)
loss = model(x).pow(2).mean()
print(mg.viz.to_dot(loss))
